//! `llq compare` and `llq error`: self-comparison is exact, the statistics equal numpy's over
//! llq's own logits and match numpy's over llama.cpp's logits (llama-cpp-python) of the same
//! GGUFs on the same chunk, the gates set the exit code, bad inputs are refused with exit
//! code 2, and each tensor's error equals gguf-py's dequantization against the F32 weights.

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

/// `llq compare --json` of `reference` against `quant` on the first chunk of `text`.
fn compare_one_chunk(reference: &Path, quant: &Path, text: &Path, dir: &Path) -> serde_json::Value {
    let args = [
        s(reference),
        s(quant),
        "-f",
        s(text),
        "--ctx",
        CTX,
        "--chunks",
        "1",
    ];
    compare_json(&args, dir)
}

/// `tests/py/compare_ref.py`'s statistics (numpy) over two logit files of the chunk `ids`.
fn numpy_statistics(py: &Path, ids: &Path, reference: &Path, quant: &Path) -> serde_json::Value {
    let args = [s(ids), s(reference), s(quant), CTX];
    serde_json::from_str(&run_py(py, "compare_ref.py", &args)).unwrap()
}

/// The statistics `llq compare` reports, each with its tolerance against numpy over the same
/// (llq's) logits: relative, about 5× the largest difference measured (2026-12-03, the AVX-512
/// VNNI kernels and LLQ_KERNELS=scalar, Q8_0 and Q4_K_M). They are not equal to the last bit
/// because llq subtracts the row maximum in f32 before its f64 log-sum-exp (as llama.cpp does),
/// numpy in f64; a KLD is a small difference of log-probabilities, so it shows most.
const OWN_LOGITS_TOLERANCES: [(&str, f64); 6] = [
    ("ppl_ref", 3e-8),   // measured 5.5e-9
    ("ppl_quant", 3e-8), // measured 2.3e-9
    ("ppl_ratio", 3e-8), // measured 6.5e-9
    ("kld_mean", 1e-6),  // measured 1.8e-7
    ("kld_p99", 1e-5),   // measured 2.0e-6
    ("rms_dp", 1e-6),    // measured 1.6e-7
];

/// The statistics themselves: numpy (tests/py/compare_ref.py) over llq's own logits of the
/// first chunk (the library's forward pass, written here) gives the numbers `llq compare`
/// reports, to rounding (OWN_LOGITS_TOLERANCES), and top-1 exactly. Reference as the F32 GGUF
/// and as the HF folder (converted in memory).
#[test]
fn statistics_equal_numpy_over_llq_logits() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(text) = heldout_file(dir.path()) else {
        return;
    };
    let f32 = convert(dir.path(), "f32");
    let n_ctx: usize = CTX.parse().unwrap();
    for ty in ["q8_0", "q4_k_m"] {
        let quant = convert(dir.path(), ty);
        // The chunk: llq's tokens of the text, BOS first, as `llq compare` cuts it.
        let ref_model = llq::Model::load(&f32).unwrap();
        let tok = llq::Tokenizer::from_gguf(&ref_model.file).unwrap();
        let mut ids = tok.tokenize(&std::fs::read_to_string(&text).unwrap(), true);
        ids.truncate(n_ctx);
        ids[0] = tok.bos();
        let ids_path = dir.path().join("ids.json");
        std::fs::write(&ids_path, serde_json::json!({ "ids": ids }).to_string()).unwrap();
        let write_logits = |model: &Path, name: &str| {
            let model = llq::Model::load(model).unwrap();
            let mut cache = llq::KvCache::new(&model, n_ctx);
            // The scored second half, as `llq compare` asks for it; the first half's rows (never
            // read by compare_ref.py) are written as zeros.
            let first = n_ctx / 2;
            let session = llq::Session::new(&model);
            let logits = session.forward(&ids, &mut cache, llq::Logits::From(first));
            let n_vocab = model.hp.n_vocab;
            let path = dir.path().join(name);
            let mut bytes = vec![0u8; first * n_vocab * 4];
            bytes.extend(logits.iter().flat_map(|v| v.to_le_bytes()));
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let want = numpy_statistics(
            &py,
            &ids_path,
            &write_logits(&f32, "ref.f32"),
            &write_logits(&quant, "quant.f32"),
        );
        for reference in [f32.clone(), fixture("hf")] {
            let got = compare_one_chunk(&reference, &quant, &text, dir.path());
            assert_eq!(got["tokens"], want["tokens"]);
            assert_eq!(f(&got, "top1"), f(&want, "top1"), "{ty} top-1");
            for (key, tol) in OWN_LOGITS_TOLERANCES {
                let (g, w) = (f(&got, key), f(&want, key));
                let rel = ((g - w) / w).abs();
                println!("{ty} {key}: llq {g:.9e} numpy {w:.9e} relative {rel:.1e}");
                assert!(
                    rel <= tol,
                    "{ty} {key}: llq {g} numpy {w}, relative {rel:.1e}"
                );
            }
        }
    }
}

/// Per type and statistic, the relative tolerance of `llq compare` against numpy over
/// llama.cpp's logits, with the largest difference measured (2026-12-03, the AVX-512 VNNI
/// kernels and LLQ_KERNELS=scalar).
const LLAMA_CPP_TOLERANCES: [(&str, &str, f64); 12] = [
    ("q8_0", "ppl_ref", 1e-7),     // measured 1.5e-8
    ("q8_0", "ppl_quant", 2e-4),   // measured 7.3e-5
    ("q8_0", "ppl_ratio", 2e-4),   // measured 7.3e-5
    ("q8_0", "kld_mean", 0.15),    // measured 6.4e-2
    ("q8_0", "kld_p99", 0.25),     // measured 0.12
    ("q8_0", "rms_dp", 0.3),       // measured 0.14
    ("q4_k_m", "ppl_ref", 1e-7),   // measured 1.5e-8
    ("q4_k_m", "ppl_quant", 4e-5), // measured 7.9e-6
    ("q4_k_m", "ppl_ratio", 4e-5), // measured 7.8e-6
    ("q4_k_m", "kld_mean", 3e-3),  // measured 5.8e-4
    ("q4_k_m", "kld_p99", 1e-5),   // measured 1.5e-6
    ("q4_k_m", "rms_dp", 2e-4),    // measured 3.0e-5
];

/// End to end against llama.cpp: numpy over llama-cpp-python's logits of the same F32 and
/// quantized GGUFs on the first chunk (tests/py/llama_logits.py, KV cache in F32 as llq keeps
/// it). llq's logits are not llama.cpp's bit for bit: the F32 side agrees to 1e-8 in ln PPL,
/// but the quantized side dots against activations quantized to Q8_0 (Q8_0 weights, and the
/// Q5_0/Q8_0 tensors of Q4_K_M), which llq rounds like ggml's reference quantize_row_q8_0
/// (ties away from zero) and llama.cpp's AVX2 path to even. Q8_0's KLD is tiny (9e-6), so
/// those few activations move it by percent; the tolerances are relative, so a KLD of 0 fails.
#[test]
fn statistics_match_numpy_over_llama_cpp_logits() {
    let (Some(py), Some(_)) = (python(), shared()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = heldout_file(dir.path()).unwrap();
    let f32 = convert(dir.path(), "f32");
    let logits = dir.path().join("logits");
    std::fs::create_dir(&logits).unwrap();
    for ty in ["q8_0", "q4_k_m"] {
        let quant = convert(dir.path(), ty);
        let ids = run_py(
            &py,
            "llama_logits.py",
            &[
                "--kv-f32",
                s(&fixture("hf/tokenizer.model")),
                s(&text),
                CTX,
                s(&logits),
                &format!("ref={}", s(&f32)),
                &format!("q={}", s(&quant)),
            ],
        );
        let ids_path = dir.path().join("ids.json");
        std::fs::write(&ids_path, ids).unwrap();
        let want = numpy_statistics(
            &py,
            &ids_path,
            &logits.join("ref.f32"),
            &logits.join("q.f32"),
        );
        let got = compare_one_chunk(&f32, &quant, &text, dir.path());
        assert_eq!(got["tokens"], want["tokens"]);
        assert_eq!(f(&got, "top1"), f(&want, "top1"), "{ty} top-1");
        for (t, key, tol) in LLAMA_CPP_TOLERANCES {
            if t != ty {
                continue;
            }
            let (g, w) = (f(&got, key), f(&want, key));
            let rel = ((g - w) / w).abs();
            println!("{ty} {key}: llq {g:.6e} numpy {w:.6e} relative {rel:.1e} (<= {tol:.1e})");
            assert!(
                rel <= tol,
                "{ty} {key}: llq {g} numpy {w}, relative {rel:.1e}"
            );
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
    assert!(errs[0] > 0.0, "{errs:?}");
    // Each tensor's error against gguf-py's dequantization of the same file, compared with the
    // F32 conversion (the Meta folder's bf16 weights, exactly): measured within 2.1e-16 relative
    // (the same f64 sums in another order; SIMD and scalar kernels), tolerance 2e-15.
    if let Some(py) = python() {
        let want: serde_json::Value =
            serde_json::from_str(&run_py(&py, "tensor_error_ref.py", &[s(&f32), s(&q)])).unwrap();
        assert_eq!(want.as_object().unwrap().len(), rows.len());
        let mut worst = 0f64;
        for r in &rows {
            let name = r["name"].as_str().unwrap();
            let (g, w) = (f(r, "rel_rmse"), f(&want, name));
            let rel = if w == 0.0 { g } else { ((g - w) / w).abs() };
            worst = worst.max(rel);
            assert!(rel <= 2e-15, "{name}: llq {g} gguf-py {w}");
        }
        println!("rel RMSE vs gguf-py: largest relative difference {worst:.1e}");
    }
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
