//! Split GGUF sets (issue 16, part 2): what llq writes llama.cpp loads to the same logits as the
//! unsplit file and gguf-py reads as gguf-split's layout; llq reads a set gguf-py wrote; bad
//! sets are refused naming the file at fault; a failed conversion leaves no file of the set.

use crate::common::{fixture, llama_cpp_logits, llq, llq_fails, llq_ok, python, run_py, s};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("{prefix}-")) && n.ends_with(".gguf")
        })
        .collect();
    v.sort();
    v
}

fn convert(out: &Path, extra: &[&str]) {
    let src = fixture("meta");
    let mut args = vec!["convert", s(&src), "-o", s(out), "-t", "q8_0", "--quiet"];
    args.extend(extra);
    llq_ok(&args);
}

#[test]
fn split_sets_load_in_llama_cpp_with_gguf_splits_layout() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.gguf");
    convert(&whole, &[]);
    let limit = 500_000u64;
    convert(&dir.path().join("m.gguf"), &["--split-max-size", "0.5M"]);
    let set = files(dir.path(), "m");
    assert_eq!(set.len(), 6, "{set:?}");
    assert!(!dir.path().join("m.gguf").exists());
    let mut total_tensors = 0;
    for (i, path) in set.iter().enumerate() {
        assert!(path.ends_with(format!("m-{:05}-of-00006.gguf", i + 1)));
        let dump: Json =
            serde_json::from_str(&run_py(&python, "gguf_dump.py", &[s(path)])).unwrap();
        let kv = dump["kv"].as_array().unwrap();
        let key = |k: &str| kv.iter().find(|e| e["key"] == k);
        assert_eq!(key("split.no").unwrap()["type"], "UINT16");
        assert_eq!(key("split.no").unwrap()["value"], i);
        assert_eq!(key("split.count").unwrap()["type"], "UINT16");
        assert_eq!(key("split.count").unwrap()["value"], 6);
        assert_eq!(key("split.tensors.count").unwrap()["type"], "INT32");
        assert_eq!(key("split.tensors.count").unwrap()["value"], 39);
        // The model's metadata only in the first file.
        assert_eq!(key("general.architecture").is_some(), i == 0);
        assert_eq!(kv.len() == 3, i > 0, "{}", path.display());
        let tensors = dump["tensors"].as_array().unwrap();
        let padded: u64 = tensors
            .iter()
            .map(|t| t["n_bytes"].as_u64().unwrap().div_ceil(32) * 32)
            .sum();
        assert!(
            padded <= limit || tensors.len() == 1,
            "{}: {padded}",
            path.display()
        );
        total_tensors += tensors.len();
    }
    assert_eq!(total_tensors, 39);
    let ids: Vec<u32> = (0..48).map(|i| (i * 37 + 1) % 512).collect();
    let scratch = dir.path().join("logits.f32");
    let want = llama_cpp_logits(&python, &whole, &ids, &scratch);
    let got = llama_cpp_logits(&python, &set[0], &ids, &scratch);
    assert_eq!(
        want, got,
        "llama.cpp gives the split set the unsplit file's logits"
    );
}

#[test]
fn llq_reads_a_set_gguf_py_wrote() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.gguf");
    convert(&whole, &[]);
    let prefix = dir.path().join("py");
    run_py(&python, "split_write.py", &[s(&whole), s(&prefix), "8"]);
    let set = files(dir.path(), "py");
    assert_eq!(set.len(), 5, "39 tensors, 8 per file: {set:?}");
    let text = dir.path().join("text.txt");
    std::fs::write(
        &text,
        "The quick brown fox jumps over the lazy dog. ".repeat(80),
    )
    .unwrap();
    let ppl = |model: &Path| {
        llq_ok(&[
            "perplexity",
            s(model),
            "-f",
            s(&text),
            "--ctx",
            "64",
            "--json",
        ])
    };
    assert_eq!(ppl(&set[0]), ppl(&whole));
    // Requantizing merges the set, or keeps its split with --keep-split.
    let merged = dir.path().join("merged.gguf");
    let args = [
        "quantize",
        s(&set[0]),
        s(&merged),
        "q8_0",
        "--allow-requantize",
        "--quiet",
    ];
    llq_ok(&args);
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(&whole).unwrap()
    );
    let kept = dir.path().join("kept.gguf");
    let mut args = vec![
        "quantize",
        s(&set[0]),
        s(&kept),
        "q8_0",
        "--allow-requantize",
    ];
    args.extend(["--quiet", "--keep-split"]);
    llq_ok(&args);
    assert_eq!(files(dir.path(), "kept").len(), 5);
}

#[test]
fn bad_sets_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    convert(&dir.path().join("m.gguf"), &["--split-max-tensors", "10"]);
    let set = files(dir.path(), "m");
    assert_eq!(set.len(), 4);
    let text = dir.path().join("t.txt");
    std::fs::write(&text, "x").unwrap();
    llq_fails(
        &["inspect", s(&set[1])],
        "is file 2 of a split set of 4: open the first one",
    );
    // A file in the wrong place.
    std::fs::rename(&set[2], dir.path().join("aside.gguf")).unwrap();
    std::fs::copy(&set[1], &set[2]).unwrap();
    llq_fails(
        &["inspect", s(&set[0])],
        "split.no is U16(1) but the file is number 3",
    );
    std::fs::remove_file(&set[2]).unwrap();
    llq_fails(&["inspect", s(&set[0])], "m-00003-of-00004.gguf: missing");
    // A first file renamed: the others cannot be found.
    let renamed = dir.path().join("first.gguf");
    std::fs::copy(&set[0], &renamed).unwrap();
    llq_fails(
        &["inspect", s(&renamed)],
        "does not end in -00001-of-00004.gguf",
    );

    // An existing file of the set is not replaced without --force, and nothing is written.
    let out = dir.path().join("n.gguf");
    std::fs::write(dir.path().join("n-00002-of-00004.gguf"), "keep").unwrap();
    let src = fixture("meta");
    let args = ["convert", s(&src), "-o", s(&out), "-t", "q8_0"];
    let run = llq(&[&args[..], &["--split-max-tensors", "10", "--quiet"]].concat());
    assert!(!run.status.success());
    assert_eq!(
        files(dir.path(), "n").len(),
        1,
        "only the file that was there"
    );
    assert_eq!(
        std::fs::read(dir.path().join("n-00002-of-00004.gguf")).unwrap(),
        b"keep"
    );
    // gguf-split's units only; both limits at once is a usage error.
    let bad = ["--split-max-size", "4T"];
    let run = llq(&[&args[..], &bad].concat());
    assert_eq!(run.status.code(), Some(2));
    let both = ["--split-max-size", "4G", "--split-max-tensors", "3"];
    assert_eq!(llq(&[&args[..], &both].concat()).status.code(), Some(2));
}
