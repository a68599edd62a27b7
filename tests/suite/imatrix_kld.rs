//! Issue #5: on the fixture, `--imatrix` with `--quant-mode unbiased` lowers KLD against the
//! F32 model for Q4_0, Q4_K_M and Q2_K, both below no imatrix and below ggml's imatrix rounding
//! (the default mode, the same tensor bytes as llama-quantize, see tests/suite/imatrix.rs), on
//! text that neither the imatrix nor the method's choices saw.
//!
//! The unbiased mode's details (the Q4_0 refinement among them) were chosen by KLD on the
//! held-out 10 % of the corpus (fixtures/README.md, "Corpus split"), so that text is not used
//! here. The training 90 % is cut in two at its middle (the first newline at or after half its
//! code points): the imatrix comes from the first half's first IMATRIX_CHUNKS chunks, KLD is
//! measured on the second half's first EVAL_CHUNKS chunks. (The fixture model was trained on
//! random windows of the whole training 90 %; the evaluation text is unseen by the imatrix and
//! by the method's choices, not by the model.) Figures: README.md, `llq imatrix`.

use crate::chunk_kld::{chunk_klds, mean, paired_difference, training_halves};
use crate::common::{corpus_split, fixture, llq_ok, s};
use llq::{KvCache, Logits, Model, Session};
use std::path::{Path, PathBuf};

/// Chunks of 512 tokens of the first half of the training text the imatrix is computed from.
const IMATRIX_CHUNKS: &str = "100";

/// Chunks of 512 tokens of the second half scored for every file. The smallest margin, Q4_0's
/// unbiased against no imatrix, was 7.3 standard errors over these 30 chunks (4.9 over 40, 7.8
/// over 100), the others 10 or more.
const EVAL_CHUNKS: usize = 30;

/// How many standard errors of the per-chunk paired difference each asserted gain must clear.
const MIN_STANDARD_ERRORS: f64 = 3.0;

/// `llq quantize f32 TYPE` with `extra` arguments, into `dir/<tag>-<ty>.gguf`.
fn quantize(dir: &Path, f32: &Path, ty: &str, tag: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{tag}-{ty}.gguf"));
    let mut args = vec!["quantize", s(f32), s(&out), ty, "--quiet"];
    args.extend(extra);
    llq_ok(&args);
    out
}

#[test]
fn unbiased_imatrix_lowers_kld_on_unseen_text() {
    let Some((first_half, second_half)) = training_halves() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (imatrix_txt, eval_txt) = (d.join("first-half.txt"), d.join("second-half.txt"));
    std::fs::write(&imatrix_txt, first_half).unwrap();
    std::fs::write(&eval_txt, &second_half).unwrap();
    let f32 = d.join("f32.gguf");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&f32),
        "-t",
        "f32",
        "--quiet",
    ]);
    let dat = d.join("imatrix.dat");
    llq_ok(&[
        "imatrix",
        s(&f32),
        "-f",
        s(&imatrix_txt),
        "-o",
        s(&dat),
        "--chunks",
        IMATRIX_CHUNKS,
        "--process-output",
        "--quiet",
    ]);
    let types = ["q4_0", "q4_k_m", "q2_k"];
    let modes: [(&str, &[&str]); 3] = [
        ("none", &[]),
        ("ggml", &["--imatrix", s(&dat)]),
        (
            "unbiased",
            &["--imatrix", s(&dat), "--quant-mode", "unbiased"],
        ),
    ];
    let mut files = Vec::new();
    for ty in types {
        for (mode, extra) in modes {
            files.push(quantize(d, &f32, ty, mode, extra));
        }
    }
    let reference = Model::load(&f32).unwrap();
    let models: Vec<Model> = files.iter().map(|f| Model::load(f).unwrap()).collect();
    let klds = chunk_klds(&reference, &models, &second_half, EVAL_CHUNKS);

    // The statistic is `llq compare`'s: its mean KLD over the first 2 chunks of the same text.
    let json = d.join("compare.json");
    let unbiased_q4_0 = &files[2];
    llq_ok(&[
        "compare",
        s(&f32),
        s(unbiased_q4_0),
        "-f",
        s(&eval_txt),
        "--chunks",
        "2",
        "--quiet",
        "--json",
        s(&json),
    ]);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let (compare, ours) = (j["kld_mean"].as_f64().unwrap(), mean(&klds[2][..2]));
    println!("llq compare: {compare:.9e}, here: {ours:.9e}");
    assert!(
        ((compare - ours) / ours).abs() <= COMPARE_AGREEMENT,
        "llq compare {compare} vs {ours}"
    );

    let mut failures = Vec::new();
    for (t, ty) in types.iter().enumerate() {
        let [none, ggml, unbiased] = [&klds[3 * t], &klds[3 * t + 1], &klds[3 * t + 2]];
        let base = mean(none);
        let pct =
            |(m, se): (f64, f64)| format!("{:+.1} % ± {:.1}", 100.0 * m / base, 100.0 * se / base);
        println!(
            "{ty}: KLD over {EVAL_CHUNKS} chunks: no imatrix {base:.4e}, ggml {:.4e} ({}), \
             unbiased {:.4e} ({}); unbiased − ggml {}",
            mean(ggml),
            pct(paired_difference(ggml, none)),
            mean(unbiased),
            pct(paired_difference(unbiased, none)),
            pct(paired_difference(unbiased, ggml)),
        );
        for (what, other) in [("no imatrix", none), ("ggml's imatrix rounding", ggml)] {
            let (m, se) = paired_difference(unbiased, other);
            if m >= -MIN_STANDARD_ERRORS * se {
                failures.push(format!(
                    "{ty}: unbiased − {what} = {m:.3e} ± {se:.3e}, not below −{MIN_STANDARD_ERRORS} \
                     standard errors"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Relative difference allowed between `llq compare`'s mean KLD and this test's: measured 3.0e-8
/// (SIMD kernels) and 1.8e-8 (LLQ_KERNELS=scalar); llq subtracts the row maximum in f32.
const COMPARE_AGREEMENT: f64 = 3e-7;

#[test]
fn unbiased_mode_needs_an_imatrix() {
    let dir = tempfile::tempdir().unwrap();
    let f32 = dir.path().join("f32.gguf");
    let meta = fixture("meta");
    llq_ok(&["convert", s(&meta), "-o", s(&f32), "-t", "f32", "--quiet"]);
    let out = dir.path().join("q.gguf");
    for (args, needle) in [
        (vec!["--quant-mode", "unbiased"], "needs --imatrix"),
        (
            vec!["--quant-mode", "best"],
            "possible values: ggml, unbiased",
        ),
    ] {
        let mut all = vec!["quantize", s(&f32), s(&out), "q4_0"];
        all.extend(args);
        let run = crate::common::llq_fails(&all, needle);
        assert_eq!(run.status.code(), Some(2));
        assert!(!out.exists());
    }
}

/// Per type: bounds on llama.cpp's logits of the unbiased file against its logits of the F32
/// file over the 64 held-out positions of the fixture reference (positions whose top-1 differs,
/// max |Δ|: twice the values measured 2026-12-03), and on max |Δ| between llq's and llama.cpp's
/// logits of the unbiased file. The imatrix comes from llq's runtime, so the files, and these
/// figures, differ slightly between the SIMD and scalar kernels (both measured). llq and
/// llama.cpp differ where an activation quantized to Q8_0 (for Q4_0, Q5_0 and Q8_0 weights) hits
/// a rounding tie (llq rounds ties away from zero as ggml's reference does, llama.cpp's AVX2
/// path to even): rare, so the Q4_K_M and Q2_K files (a few such tensors) get 10× their
/// measured value.
const UNBIASED_IN_LLAMA_CPP: [(&str, usize, f32, f32); 3] = [
    ("q4_0", 2, 0.63, 4e-2),     // measured 1, 0.314, 1.8e-2 (SIMD 1.6e-2)
    ("q4_k_m", 2, 0.74, 2.5e-2), // measured 1, 0.368, 2.5e-3 (SIMD 1.9e-5)
    ("q2_k", 6, 3.0, 5e-4),      // measured 3, 1.498, 5.2e-5 (SIMD 1.2e-5)
];

/// The unbiased mode keeps ggml's block layouts: llama.cpp loads its files, computes the same
/// logits from them as llq's runtime does, and those stay close to the F32 file's.
#[test]
fn unbiased_files_run_in_llama_cpp() {
    let Some(python) = crate::common::python() else {
        return;
    };
    let Some((text, _)) = corpus_split() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let f32 = dir.path().join("f32.gguf");
    let meta = fixture("meta");
    llq_ok(&["convert", s(&meta), "-o", s(&f32), "-t", "f32", "--quiet"]);
    let text_path = dir.path().join("train.txt");
    std::fs::write(&text_path, text).unwrap();
    let dat = dir.path().join("imatrix.dat");
    let args = ["-f", s(&text_path), "-o", s(&dat), "--chunks", "2"];
    llq_ok(&[&["imatrix", s(&f32), "--quiet"][..], &args].concat());
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("reference/logits.json")).unwrap())
            .unwrap();
    let ids: Vec<u32> = reference["heldout64"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let scratch = dir.path().join("logits.f32");
    let want = crate::common::llama_cpp_logits(&python, &f32, &ids, &scratch);
    let argmax = |row: &[f32]| {
        (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap()
    };
    let mut failures = Vec::new();
    for (ty, differ_bound, max_bound, llq_bound) in UNBIASED_IN_LLAMA_CPP {
        let imatrix = ["--imatrix", s(&dat), "--quant-mode", "unbiased"];
        let q = quantize(dir.path(), &f32, ty, "unbiased", &imatrix);
        let got = crate::common::llama_cpp_logits(&python, &q, &ids, &scratch);
        assert_eq!(got.len(), want.len(), "{ty}");
        assert!(got.iter().all(|v| v.is_finite()), "{ty}: non-finite logits");
        let differ = got
            .chunks_exact(512)
            .zip(want.chunks_exact(512))
            .filter(|(a, b)| argmax(a) != argmax(b))
            .count();
        let diff = crate::common::max_abs_diff(&got, &want);
        let model = Model::load(&q).unwrap();
        let mut cache = KvCache::new(&model, ids.len());
        let ours = Session::new(&model).forward(&ids, &mut cache, Logits::All);
        let llq_diff = crate::common::max_abs_diff(&ours, &got);
        println!(
            "{ty}: llama.cpp top-1 differs from F32 at {differ}/64 positions, max |Δlogit| \
             {diff:.3}; llq vs llama.cpp on the same file: max |Δlogit| {llq_diff:.2e}"
        );
        if differ > differ_bound || diff > max_bound || llq_diff > llq_bound {
            failures.push(format!(
                "{ty}: top-1 differs at {differ} (<= {differ_bound}), max |Δ| {diff} \
                 (<= {max_bound}), llq vs llama.cpp {llq_diff} (<= {llq_bound})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
