//! Bad input: each case exits non-zero with one line naming the file and the problem, leaves
//! no output (nor a temporary file), and never panics.

use crate::common::{fixture, llq, llq_ok, s, shared};
use std::path::{Path, PathBuf};

/// A scratch copy of a fixture folder that a test may damage.
fn copy_fixture(layout: &str, dir: &Path) -> PathBuf {
    let dst = dir.join(layout);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixture(layout)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

/// Run llq, which must refuse: exit code 1 or 2, a single `llq: error:` line containing every
/// `needles`, and nothing left in `out`'s folder that was not there before.
fn assert_refused(args: &[&str], out: &Path, needles: &[&str]) {
    let dir = out.parent().unwrap();
    let before = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let run = llq(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let code = run.status.code();
    assert!(
        matches!(code, Some(1) | Some(2)),
        "exit {code:?} for {args:?}: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected for {args:?}: {stderr}");
    assert!(lines[0].starts_with("llq: error: "), "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from: {}", lines[0]);
    }
    assert!(!out.exists(), "{} was written", out.display());
    let after = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(before, after, "a file was left in {}", dir.display());
}

fn convert_refused(src: &Path, needles: &[&str]) {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.gguf");
    assert_refused(
        &["convert", s(src), "-o", s(&out), "--quiet"],
        &out,
        needles,
    );
}

fn truncate(path: &Path, keep: f64) {
    let len = std::fs::metadata(path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len((len as f64 * keep) as u64).unwrap();
}

#[test]
fn truncated_pth() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_fixture("meta", dir.path());
    truncate(&src.join("consolidated.00.pth"), 0.6);
    convert_refused(&src, &["consolidated.00.pth"]);
}

#[test]
fn truncated_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_fixture("hf", dir.path());
    truncate(&src.join("model-00002-of-00002.safetensors"), 0.7);
    convert_refused(&src, &["model-00002-of-00002.safetensors"]);
}

#[test]
fn truncated_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.gguf");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&good),
        "--type",
        "f16",
        "--quiet",
    ]);
    for keep in [0.001, 0.3, 0.999] {
        let bad = dir.path().join(format!("cut-{keep}.gguf"));
        std::fs::copy(&good, &bad).unwrap();
        truncate(&bad, keep);
        let out = dir.path().join("out.gguf");
        assert_refused(
            &["quantize", s(&bad), s(&out), "q8_0", "--quiet"],
            &out,
            &["cut-"],
        );
        assert_refused(&["inspect", s(&bad)], &out, &["cut-"]);
    }
}

#[test]
fn pickle_global_outside_the_allow_list_is_refused_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_fixture("meta", dir.path());
    let pth = src.join("consolidated.00.pth");
    // Swap an allowed global for one of the same length inside the stored pickle: the zip
    // stays well-formed, and unpickling it in Python would run a command.
    let mut bytes = std::fs::read(&pth).unwrap();
    let (allowed, evil) = (b"collections\nOrderedDict\n", b"subprocess\ncheck_output\n");
    let at = bytes
        .windows(allowed.len())
        .position(|w| w == allowed)
        .expect("fixture pickle names OrderedDict");
    bytes[at..at + evil.len()].copy_from_slice(evil);
    std::fs::write(&pth, bytes).unwrap();
    convert_refused(&src, &["consolidated.00.pth", "subprocess.check_output"]);
}

/// A one-tensor safetensors file with the given header entry, beside a config.json.
fn safetensors_with(dir: &Path, entry: &str, data_len: usize) -> PathBuf {
    let header = format!("{{\"model.embed_tokens.weight\":{entry}}}");
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(vec![0u8; data_len]);
    let path = dir.join("model.safetensors");
    std::fs::write(&path, bytes).unwrap();
    std::fs::copy(fixture("hf/config.json"), dir.join("config.json")).unwrap();
    path
}

#[test]
fn safetensors_offsets_past_the_file_or_overlapping() {
    let dir = tempfile::tempdir().unwrap();
    let past = safetensors_with(
        dir.path(),
        r#"{"dtype":"BF16","shape":[4,4],"data_offsets":[0,32]}"#,
        16,
    );
    convert_refused(&past, &["model.safetensors"]);
    let header = r#"{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2,2],"data_offsets":[4,12]}"#;
    let overlapping = safetensors_with(dir.path(), header, 12);
    convert_refused(&overlapping, &["model.safetensors"]);
}

fn edit_params(src: &Path, edit: impl Fn(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = src.join("params.json");
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(p.as_object_mut().unwrap());
    std::fs::write(&path, p.to_string()).unwrap();
}

#[test]
fn params_json_missing_fields_or_contradicting_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_fixture("meta", dir.path());
    edit_params(&src, |p| {
        p.remove("dim");
    });
    convert_refused(&src, &["params.json", "dim"]);
    edit_params(&src, |p| {
        p.insert("dim".into(), 512.into());
    });
    convert_refused(&src, &["params.json"]);
    edit_params(&src, |p| {
        p.insert("dim".into(), 256.into());
        p.insert("n_layers".into(), 5.into());
    });
    convert_refused(&src, &["missing tensor blk.4"]);
    edit_params(&src, |p| {
        p.insert("n_layers".into(), (-4).into());
    });
    convert_refused(&src, &["params.json", "n_layers must be positive"]);
}

#[test]
fn a_missing_shard() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_fixture("meta-2shard", dir.path());
    std::fs::remove_file(src.join("consolidated.01.pth")).unwrap();
    convert_refused(&src, &["shard missing"]);
    let src = dir.path().join("second-only");
    std::fs::create_dir(&src).unwrap();
    for f in ["consolidated.01.pth", "params.json", "tokenizer.model"] {
        std::fs::copy(fixture("meta-2shard").join(f), src.join(f)).unwrap();
    }
    convert_refused(&src, &["consolidated.00.pth is missing"]);
}

#[test]
fn a_tiktoken_tokenizer_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_fixture("meta", dir.path());
    let tiktoken = match shared() {
        Some(shared) => std::fs::read(shared.join("tokenizers/llama3/tokenizer.model")).unwrap(),
        None => b"IQ== 0\nIg== 1\nIw== 2\n".to_vec(),
    };
    std::fs::write(src.join("tokenizer.model"), tiktoken).unwrap();
    convert_refused(&src, &["tokenizer.model", "tiktoken"]);
}

#[test]
fn output_folder_missing_or_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no/such/folder/out.gguf");
    let run = llq(&["convert", s(&fixture("meta")), "-o", s(&out), "--quiet"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("output folder does not exist"));
    // A read-only place even for root: procfs refuses new files.
    let out = Path::new("/proc/llq-test-out.gguf");
    let run = llq(&["convert", s(&fixture("meta")), "-o", s(out), "--quiet"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("llq-test-out.gguf") && stderr.contains("cannot create"),
        "{stderr}"
    );
}

#[test]
fn an_existing_output_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    std::fs::write(&out, b"keep me").unwrap();
    let run = llq(&["convert", s(&fixture("meta")), "-o", s(&out), "--quiet"]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&out),
        "--quiet",
        "--force",
    ]);
    assert_ne!(std::fs::read(&out).unwrap(), b"keep me");
}

#[test]
fn nonfinite_weights_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_fixture("hf", dir.path());
    let shard = src.join("model-00001-of-00002.safetensors");
    let file = llq_formats::safetensors::open(&shard).unwrap();
    let t = &file.tensors[file.tensors.len() / 2];
    let (name, at) = (t.name.clone(), t.range.start + 2 * 7);
    drop(file);
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[at..at + 2].copy_from_slice(&0x7fc0u16.to_le_bytes()); // bf16 NaN
    std::fs::write(&shard, bytes).unwrap();
    convert_refused(&src, &["non-finite", "--allow-nonfinite"]);
    let gguf_name = llq::gguf_name(llq::Naming::HuggingFace, &name).unwrap();
    let out = dir.path().join("kept.gguf");
    let run = llq(&[
        "convert",
        s(&src),
        "-o",
        s(&out),
        "--quiet",
        "--allow-nonfinite",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let refused = llq(&[
        "convert",
        s(&src),
        "-o",
        s(&dir.path().join("x.gguf")),
        "--quiet",
    ]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains(&gguf_name));
}

#[test]
fn unknown_type_names_list_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let src = fixture("meta");
    let args = ["convert", s(&src), "-o", s(&out), "--type", "q4_k_x"];
    assert_refused(&args, &out, &["q4_k_x", "Q4_K_M", "Q8_0"]);
    assert_eq!(llq(&args).status.code(), Some(2));
}

#[test]
fn already_quantized_input_needs_allow_requantize() {
    let dir = tempfile::tempdir().unwrap();
    let q8 = dir.path().join("q8.gguf");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&q8),
        "--type",
        "q8_0",
        "--quiet",
    ]);
    let out = dir.path().join("q4.gguf");
    assert_refused(
        &["quantize", s(&q8), s(&out), "q4_0", "--quiet"],
        &out,
        &["q8.gguf", "--allow-requantize"],
    );
    llq_ok(&[
        "quantize",
        s(&q8),
        s(&out),
        "q4_0",
        "--quiet",
        "--allow-requantize",
    ]);
}
