//! `llq compare` and `llq error`: self-comparison is exact, the statistics match numpy over
//! llama.cpp's logits (llama-cpp-python) of the same GGUFs on the same chunk, the gates set the
//! exit code, and bad inputs are refused with exit code 2.

use crate::common::*;
use std::path::{Path, PathBuf};

const CTX: &str = "128";

fn convert(dir: &Path, ty: &str) -> PathBuf {
    let out = dir.join(format!("{ty}.gguf"));
    llq_ok(&[
        "convert",
        s(&fixture("hf")),
        "-o",
        s(&out),
        "-t",
        ty,
        "--quiet",
    ]);
    out
}

/// The held-out text in `dir`, or None (SKIPPED) without LLQ_SHARED.
fn heldout_file(dir: &Path) -> Option<PathBuf> {
    let path = dir.join("heldout.txt");
    std::fs::write(&path, heldout_text()?).unwrap();
    Some(path)
}

fn compare_json(args: &[&str], dir: &Path) -> serde_json::Value {
    let json = dir.join("out.json");
    let mut all = vec!["compare", "--quiet", "--json", s(&json)];
    all.extend_from_slice(args);
    llq_ok(&all);
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn f(j: &serde_json::Value, key: &str) -> f64 {
    j[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {j}"))
}

#[test]
fn a_model_against_itself_has_zero_kld_and_full_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let Some(text) = heldout_file(dir.path()) else {
        return;
    };
    let f32 = convert(dir.path(), "f32");
    // The same GGUF twice, and the Meta folder (converted in memory) against its F32 GGUF.
    for reference in [f32.clone(), fixture("meta")] {
        let j = compare_json(
            &[
                s(&reference),
                s(&f32),
                "-f",
                s(&text),
                "--ctx",
                CTX,
                "--chunks",
                "2",
            ],
            dir.path(),
        );
        assert_eq!(f(&j, "kld_mean"), 0.0, "{j}");
        assert_eq!(f(&j, "kld_max"), 0.0, "{j}");
        assert_eq!(f(&j, "top1"), 1.0, "{j}");
        assert_eq!(f(&j, "rms_dp"), 0.0, "{j}");
        assert_eq!(f(&j, "ppl_ratio"), 1.0, "{j}");
        assert_eq!(f(&j, "ppl_ref"), f(&j, "ppl_quant"));
        assert_eq!(j["tokens"], 2 * (128 / 2 - 1));
    }
}

/// Reference: llama-cpp-python's logits of the same F32 and Q8_0 GGUFs on the first chunk
/// (tests/py/llama_logits.py) and numpy for the statistics (tests/py/compare_ref.py).
#[test]
fn statistics_match_numpy_over_llama_cpp_logits() {
    let (Some(py), Some(shared)) = (python(), shared()) else {
        return;
    };
    let _ = shared;
    let dir = tempfile::tempdir().unwrap();
    let text = heldout_file(dir.path()).unwrap();
    let f32 = convert(dir.path(), "f32");
    let q8 = convert(dir.path(), "q8_0");
    let logits = dir.path().join("logits");
    std::fs::create_dir(&logits).unwrap();
    let ids = run_py(
        &py,
        "llama_logits.py",
        &[
            s(&fixture("hf/tokenizer.model")),
            s(&text),
            CTX,
            s(&logits),
            &format!("ref={}", s(&f32)),
            &format!("q={}", s(&q8)),
        ],
    );
    let ids_path = dir.path().join("ids.json");
    std::fs::write(&ids_path, ids).unwrap();
    let want: serde_json::Value = serde_json::from_str(&run_py(
        &py,
        "compare_ref.py",
        &[
            s(&ids_path),
            s(&logits.join("ref.f32")),
            s(&logits.join("q.f32")),
            CTX,
        ],
    ))
    .unwrap();
    // REF as the F32 GGUF and as the HF folder (converted in memory): the same numbers.
    for reference in [f32.clone(), fixture("hf")] {
        let got = compare_json(
            &[
                s(&reference),
                s(&q8),
                "-f",
                s(&text),
                "--ctx",
                CTX,
                "--chunks",
                "1",
            ],
            dir.path(),
        );
        assert_eq!(got["tokens"], want["tokens"]);
        // PPLs through their logarithms (the mean NLL): 1e-4 absolute on PPL ≈ 91 would ask
        // the two F32 forward passes to agree to 1e-6 relative, below their rounding noise.
        // The quantized side runs two different Q8_0 implementations (llq's kernels, SIMD or
        // scalar, and llama.cpp's), which round activations differently: measured up to
        // 1.3e-4 apart in ln PPL, so 5e-4 there; the F32 side keeps 1e-4.
        for (key, tol) in [("ppl_ref", 1e-4), ("ppl_quant", 5e-4)] {
            let (g, w) = (f(&got, key).ln(), f(&want, key).ln());
            assert!((g - w).abs() <= tol, "ln {key}: llq {g} numpy {w}");
        }
        for (key, tol) in [
            ("ppl_ratio", 5e-4),
            ("kld_mean", 1e-4),
            ("kld_p99", 1e-4),
            ("top1", 1e-4),
            ("rms_dp", 1e-4),
        ] {
            let (g, w) = (f(&got, key), f(&want, key));
            println!("{key}: llq {g} numpy {w} diff {:.2e}", (g - w).abs());
            assert!((g - w).abs() <= tol, "{key}: llq {g} numpy {w}");
        }
    }
}

#[test]
fn gates_set_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let Some(text) = heldout_file(dir.path()) else {
        return;
    };
    let f32 = convert(dir.path(), "f32");
    let q = convert(dir.path(), "q2_k");
    let base = [
        s(&f32),
        s(&q),
        "-f",
        s(&text),
        "--ctx",
        CTX,
        "--chunks",
        "2",
    ];
    let j = compare_json(&base, dir.path());
    let (kld, ratio, top1) = (f(&j, "kld_mean"), f(&j, "ppl_ratio"), f(&j, "top1"));
    assert!(kld > 0.0 && top1 < 1.0, "Q2_K should differ: {j}");
    let cases = [
        ("--max-kld", kld * 0.99, kld * 1.01, "KLD"),
        ("--max-ppl-ratio", ratio * 0.999, ratio * 1.001, "PPL ratio"),
        ("--min-top1", top1 + 0.001, top1 - 0.001, "top-1"),
    ];
    for (flag, fail, pass, what) in cases {
        let run = |v: f64| {
            let v = v.to_string();
            let mut args = vec!["compare", "--quiet"];
            args.extend_from_slice(&base);
            args.extend_from_slice(&[flag, &v]);
            llq(&args)
        };
        let out = run(fail);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag} {fail}: {err}");
        assert!(
            err.contains(what) && err.trim().lines().count() == 1,
            "{err}"
        );
        let out = run(pass);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flag} {pass}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The percentage form of --min-top1.
    let out = llq(&[&["compare", "--quiet"][..], &base, &["--min-top1", "100"]].concat());
    assert_eq!(out.status.code(), Some(1));
}

/// Replace the first occurrence of `from` by `to` (same length) in a copy of `src`.
fn patched(src: &Path, out: &Path, from: &[u8], to: &[u8]) -> PathBuf {
    let mut bytes = std::fs::read(src).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    bytes[at..at + to.len()].copy_from_slice(to);
    std::fs::write(out, bytes).unwrap();
    out.to_path_buf()
}

fn refused(args: &[&str], needles: &[&str]) {
    let out = llq(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
}

#[test]
fn bad_inputs_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f32 = convert(d, "f32");
    let q = convert(d, "q4_k_m");
    let long_text = d.join("long.txt");
    std::fs::write(
        &long_text,
        "the quick brown fox jumps over the lazy dog. ".repeat(200),
    )
    .unwrap();
    // Different vocabularies: one token's text changed.
    let other_vocab = patched(&f32, &d.join("vocab.gguf"), b"<unk>", b"<UNK>");
    refused(
        &["compare", s(&f32), s(&other_vocab), "-f", s(&long_text)],
        &["different vocabularies"],
    );
    // Another architecture (general.architecture's value: u64 length 5, then the name).
    let mut from = 5u64.to_le_bytes().to_vec();
    from.extend_from_slice(b"llama");
    let mut to = 5u64.to_le_bytes().to_vec();
    to.extend_from_slice(b"gemma");
    let other_arch = patched(&q, &d.join("arch.gguf"), &from, &to);
    refused(
        &["compare", s(&f32), s(&other_arch), "-f", s(&long_text)],
        &["gemma"],
    );
    // Text shorter than two contexts.
    let short = d.join("short.txt");
    std::fs::write(&short, "a few words only").unwrap();
    refused(
        &["compare", s(&f32), s(&q), "-f", s(&short)],
        &["short.txt", "needs at least"],
    );
    // Missing files and a non-model reference.
    refused(
        &[
            "compare",
            s(&d.join("nope.gguf")),
            s(&q),
            "-f",
            s(&long_text),
        ],
        &["nope.gguf"],
    );
    refused(
        &["compare", s(&long_text), s(&q), "-f", s(&long_text)],
        &["long.txt"],
    );
    refused(&["compare", s(&f32), s(&q)], &["-f TEXT"]);
}

#[test]
fn per_tensor_errors_are_sorted_worst_first() {
    let dir = tempfile::tempdir().unwrap();
    let f32 = convert(dir.path(), "f32");
    let q = convert(dir.path(), "q4_k_m");
    let json = dir.path().join("err.json");
    let out = llq_ok(&["error", s(&fixture("meta")), s(&q), "--json", s(&json)]);
    assert!(out.contains("rel RMSE"), "{out}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 39);
    let errs: Vec<f64> = rows.iter().map(|r| f(r, "rel_rmse")).collect();
    assert!(errs.windows(2).all(|w| w[0] >= w[1]), "{errs:?}");
    // F32 norms are exact; quantized matrices are not.
    assert_eq!(*errs.last().unwrap(), 0.0);
    assert!(errs[0] > 0.01 && errs[0] < 0.5, "{errs:?}");
    // Against itself: all zero.
    let json2 = dir.path().join("self.json");
    llq_ok(&["error", s(&f32), s(&f32), "--json", s(&json2)]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json2).unwrap()).unwrap();
    assert!(rows.iter().all(|r| f(r, "rel_rmse") == 0.0));
}

/// `--plot` draws each compared file, labelled, in an SVG an XML parser reads; several files
/// are compared against one reference.
#[test]
fn several_files_and_their_plot() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let f16 = dir.path().join("f16.gguf");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&f16),
        "-t",
        "f16",
        "--quiet",
    ]);
    let mut quants = Vec::new();
    for ty in ["q4_0", "q8_0", "q2_k"] {
        let q = dir.path().join(format!("{ty}.gguf"));
        llq_ok(&["quantize", s(&f16), s(&q), ty, "--quiet"]);
        quants.push(q);
    }
    let text = dir.path().join("text.txt");
    std::fs::write(
        &text,
        "The quick brown fox jumps over the lazy dog. ".repeat(200),
    )
    .unwrap();
    let svg = dir.path().join("plot.svg");
    let json = dir.path().join("all.json");
    let mut args = vec!["compare", s(&f16)];
    args.extend(quants.iter().map(|q| s(q)));
    args.extend(["-f", s(&text), "--ctx", "128", "--chunks", "2", "--quiet"]);
    args.extend(["--plot", s(&svg), "--json", s(&json)]);
    let out = llq_ok(&args);
    assert_eq!(out.matches("== ").count(), 3, "{out}");
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let files = all["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    let kld = |i: usize| files[i]["stats"]["kld_mean"].as_f64().unwrap();
    assert!(kld(2) > kld(0) && kld(0) > kld(1), "Q2_K > Q4_0 > Q8_0");
    let summary: serde_json::Value =
        serde_json::from_str(&run_py(&python, "svg_summary.py", &[s(&svg)])).unwrap();
    assert_eq!(summary["root"], "{http://www.w3.org/2000/svg}svg");
    assert_eq!(summary["circles"], 3);
    let texts: Vec<&str> = summary["texts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    for label in ["q4_0", "q8_0", "q2_k", "Pareto front"] {
        assert!(texts.contains(&label), "{label} in {texts:?}");
    }
}
