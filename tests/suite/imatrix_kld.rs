//! Issue #5: on the fixture, `--imatrix` lowers KLD for Q4_0, Q4_K_M and Q2_K — with
//! `--quant-mode unbiased`. The imatrix comes from the training part of the corpus, KLD is
//! measured against the F32 model on the held-out part (fixtures/README.md, "Corpus split").
//! ggml's own imatrix rounding (the default mode, byte-identical to llama-quantize, see
//! tests/imatrix.rs) does not lower KLD on this model (figures in README.md, `llq imatrix`).

use crate::common::{corpus_split, fixture, llq_ok, s};
use std::path::{Path, PathBuf};

/// Training chunks of 512 tokens the imatrix is computed from.
const IMATRIX_CHUNKS: &str = "100";

/// Held-out chunks scored per type. Q4_0's gain is small (-3.0 % over all 137 held-out chunks,
/// 3 standard errors of the per-chunk paired difference; -2.8 % over the first 100, 2.3; -1.5 %
/// over the first 40, 1.1), so it is scored on 100 chunks; the K-quants gain 10-25 % and 20
/// chunks show it by more than 7 standard errors.
const TYPES: [(&str, &str); 3] = [("q4_0", "100"), ("q4_k_m", "20"), ("q2_k", "20")];

/// `llq compare`'s mean KLD of `quant` against `reference` on the first `chunks` of `text`.
fn kld(reference: &Path, quant: &Path, text: &Path, chunks: &str) -> f64 {
    let json = quant.with_extension("json");
    let args = [
        "compare",
        s(reference),
        s(quant),
        "-f",
        s(text),
        "--json",
        s(&json),
        "--chunks",
        chunks,
    ];
    llq_ok(&args);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    j["kld_mean"].as_f64().unwrap()
}

/// `llq quantize f32 TYPE` with `extra` arguments, into `dir/<tag>-<ty>.gguf`.
fn quantize(dir: &Path, f32: &Path, ty: &str, tag: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{tag}-{ty}.gguf"));
    let mut args = vec!["quantize", s(f32), s(&out), ty, "--quiet"];
    args.extend(extra);
    llq_ok(&args);
    out
}

#[test]
fn imatrix_lowers_kld_with_unbiased_rounding() {
    let Some((training, heldout)) = corpus_split() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (train_txt, heldout_txt) = (dir.path().join("train.txt"), dir.path().join("heldout.txt"));
    std::fs::write(&train_txt, training).unwrap();
    std::fs::write(&heldout_txt, heldout).unwrap();
    let f32 = dir.path().join("f32.gguf");
    let meta = fixture("meta");
    llq_ok(&["convert", s(&meta), "-o", s(&f32), "-t", "f32", "--quiet"]);
    let dat = dir.path().join("train.dat");
    llq_ok(&[
        "imatrix",
        s(&f32),
        "-f",
        s(&train_txt),
        "-o",
        s(&dat),
        "--chunks",
        IMATRIX_CHUNKS,
        "--process-output",
        "--quiet",
    ]);
    let mut failures = Vec::new();
    for (ty, chunks) in TYPES {
        let plain_q = quantize(dir.path(), &f32, ty, "plain", &[]);
        let plain = kld(&f32, &plain_q, &heldout_txt, chunks);
        let args = ["--imatrix", s(&dat), "--quant-mode", "unbiased"];
        let unbiased_q = quantize(dir.path(), &f32, ty, "unbiased", &args);
        let unbiased = kld(&f32, &unbiased_q, &heldout_txt, chunks);
        println!(
            "{ty}: KLD without imatrix {plain:.4e}, with imatrix (unbiased) {unbiased:.4e} \
             ({:+.1} %)",
            100.0 * (unbiased / plain - 1.0)
        );
        if unbiased >= plain {
            failures.push(format!("{ty}: {unbiased:.4e} >= {plain:.4e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "imatrix did not lower KLD: {failures:?}"
    );
}

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

/// The unbiased mode keeps ggml's block layouts: llama.cpp loads its files and their logits on
/// the 64 held-out positions of the fixture reference stay close to the F32 file's.
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
    for ty in ["q4_0", "q4_k_m", "q2_k"] {
        let imatrix = ["--imatrix", s(&dat), "--quant-mode", "unbiased"];
        let q = quantize(dir.path(), &f32, ty, "unbiased", &imatrix);
        let got = crate::common::llama_cpp_logits(&python, &q, &ids, &scratch);
        assert_eq!(got.len(), want.len(), "{ty}");
        assert!(got.iter().all(|v| v.is_finite()), "{ty}: non-finite logits");
        let same = got
            .chunks_exact(512)
            .zip(want.chunks_exact(512))
            .filter(|(a, b)| argmax(a) == argmax(b))
            .count();
        let diff = crate::common::max_abs_diff(&got, &want);
        println!(
            "{ty}: llama.cpp top-1 equal to F32 at {same}/64 positions, max |Δlogit| {diff:.3}"
        );
        assert!(same >= 48, "{ty}: top-1 equal at only {same}/64 positions");
    }
}
