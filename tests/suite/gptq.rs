//! `--quant-mode gptq` (issue 14): on text that neither the calibration nor the imatrix saw, the
//! error-compensated files are closer to the F32 model than ggml's imatrix rounding at the same
//! type and size; llama.cpp loads them and computes what llq computes; bad calibration is
//! refused before any output exists, and a text that leaves the Hessians singular still gives
//! finite files.
//!
//! Texts as in imatrix_kld.rs: the training 90 % of the corpus cut in two; the imatrix and the
//! GPTQ calibration come from the first half, KLD is measured on the second.

use crate::chunk_kld::{chunk_klds, mean, paired_difference, training_halves};
use crate::common::{fixture, llq, llq_fails, llq_ok, s};
use llq::{KvCache, Logits, Model, Session};
use std::path::{Path, PathBuf};

/// Chunks of 512 tokens of the first half: the imatrix's and GPTQ's calibration.
const CALIBRATION_CHUNKS: &str = "32";
/// Chunks of 512 tokens of the second half scored for every file.
const EVAL_CHUNKS: usize = 30;
/// How many standard errors of the per-chunk paired difference the gain must clear.
const MIN_STANDARD_ERRORS: f64 = 3.0;
/// The largest mean-KLD ratio gptq / ggml+imatrix accepted: issue 14's target (measured 0.598
/// and 0.651, see [`COMPARED`]).
const MAX_RATIO: f64 = 0.7;

struct Setup {
    dir: tempfile::TempDir,
    f32: PathBuf,
    calibration: PathBuf,
    imatrix: PathBuf,
    eval_text: String,
}

fn setup() -> Option<Setup> {
    let (first_half, second_half) = training_halves()?;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let calibration = d.join("first-half.txt");
    std::fs::write(&calibration, first_half).unwrap();
    let f32 = d.join("f32.gguf");
    let meta = fixture("meta");
    llq_ok(&["convert", s(&meta), "-o", s(&f32), "-t", "f32", "--quiet"]);
    let imatrix = d.join("imatrix.dat");
    llq_ok(&[
        "imatrix",
        s(&f32),
        "-f",
        s(&calibration),
        "-o",
        s(&imatrix),
        "--chunks",
        CALIBRATION_CHUNKS,
        "--process-output",
        "--quiet",
    ]);
    Some(Setup {
        dir,
        f32,
        calibration,
        imatrix,
        eval_text: second_half,
    })
}

impl Setup {
    /// `llq quantize F32 OUT TYPE --imatrix DAT`, with GPTQ over the calibration if `gptq`.
    fn quantize(&self, ty: &str, gptq: bool) -> PathBuf {
        let mode = if gptq { "gptq" } else { "ggml" };
        let out = self.dir.path().join(format!("{mode}-{ty}.gguf"));
        let mut args = vec![
            "quantize",
            s(&self.f32),
            s(&out),
            ty,
            "--imatrix",
            s(&self.imatrix),
            "--quiet",
        ];
        if gptq {
            args.extend([
                "--quant-mode",
                "gptq",
                "--calibration",
                s(&self.calibration),
                "--calibration-chunks",
                CALIBRATION_CHUNKS,
            ]);
        }
        llq_ok(&args);
        out
    }
}

/// The types compared (plain file types: GPTQ rounds token_embd, a lookup rather than a
/// product, as ggml does). Measured 2026-12-03 over these 30 chunks: gptq / ggml+imatrix 0.598
/// (Q4_0) and 0.653 (Q4_K_M), each difference more than 20 standard errors below zero.
const COMPARED: [&str; 2] = ["q4_0", "q4_k_m"];

#[test]
fn gptq_lowers_kld_below_ggml_imatrix_rounding_on_unseen_text() {
    let Some(setup) = setup() else {
        return;
    };
    let types = COMPARED;
    let mut files = Vec::new();
    for ty in types {
        files.push(setup.quantize(ty, false));
        files.push(setup.quantize(ty, true));
    }
    let reference = Model::load(&setup.f32).unwrap();
    let models: Vec<Model> = files.iter().map(|f| Model::load(f).unwrap()).collect();
    let klds = chunk_klds(&reference, &models, &setup.eval_text, EVAL_CHUNKS);
    let mut failures = Vec::new();
    for (t, ty) in types.iter().enumerate() {
        let (ggml, gptq) = (&klds[2 * t], &klds[2 * t + 1]);
        let size = |f: &Path| std::fs::metadata(f).unwrap().len();
        assert_eq!(size(&files[2 * t]), size(&files[2 * t + 1]), "{ty}: sizes");
        let (m, se) = paired_difference(gptq, ggml);
        println!(
            "{ty}: KLD over {EVAL_CHUNKS} unseen chunks: ggml+imatrix {:.4e}, gptq {:.4e} \
             (ratio {:.3}, difference {m:.3e} ± {se:.3e})",
            mean(ggml),
            mean(gptq),
            mean(gptq) / mean(ggml)
        );
        if m >= -MIN_STANDARD_ERRORS * se {
            failures.push(format!(
                "{ty}: gptq − ggml = {m:.3e} ± {se:.3e}, not below −{MIN_STANDARD_ERRORS} \
                 standard errors"
            ));
        }
        if mean(gptq) / mean(ggml) > MAX_RATIO {
            failures.push(format!(
                "{ty}: gptq / ggml = {:.3}, above {MAX_RATIO}",
                mean(gptq) / mean(ggml)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// GPTQ keeps ggml's block layouts: llama.cpp loads the files and computes the logits llq's
/// runtime computes from them (bounds: the unbiased files' in imatrix_kld.rs).
#[test]
fn gptq_files_run_in_llama_cpp() {
    let Some(python) = crate::common::python() else {
        return;
    };
    let Some(setup) = setup() else {
        return;
    };
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("reference/logits.json")).unwrap())
            .unwrap();
    let ids: Vec<u32> = reference["heldout64"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let scratch = setup.dir.path().join("logits.f32");
    for (ty, llq_bound) in LLQ_VS_LLAMA_CPP {
        let q = setup.quantize(ty, true);
        let got = crate::common::llama_cpp_logits(&python, &q, &ids, &scratch);
        assert!(got.iter().all(|v| v.is_finite()), "{ty}: non-finite logits");
        let model = Model::load(&q).unwrap();
        let mut cache = KvCache::new(&model, ids.len());
        let ours = Session::new(&model).forward(&ids, &mut cache, Logits::All);
        let diff = crate::common::max_abs_diff(&ours, &got);
        println!("{ty}: llq vs llama.cpp on the gptq file: max |Δlogit| {diff:.2e}");
        assert!(diff <= llq_bound, "{ty}: {diff} > {llq_bound}");
    }
}

/// Per type, max |Δlogit| between llq and llama.cpp on the same gptq file: Q4_0 activations
/// meet Q8_0 rounding ties (see imatrix_kld.rs), Q4_K_M few of them. Measured 3.7e-2 and
/// 4.5e-3 (SIMD kernels), 3.6e-2 and 3.3e-3 (scalar).
const LLQ_VS_LLAMA_CPP: [(&str, f32); 2] = [("q4_0", 4.5e-2), ("q4_k_m", 6.5e-3)];

#[test]
fn gptq_needs_a_calibration_text_long_enough() {
    let dir = tempfile::tempdir().unwrap();
    let meta = fixture("meta");
    let out = dir.path().join("q.gguf");
    let run = llq_fails(
        &[
            "convert",
            s(&meta),
            "-o",
            s(&out),
            "-t",
            "q4_0",
            "--quant-mode",
            "gptq",
        ],
        "give --calibration TEXT",
    );
    assert_eq!(run.status.code(), Some(2));
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "Only a few words of calibration text.").unwrap();
    let run = llq_fails(
        &[
            "convert",
            s(&meta),
            "-o",
            s(&out),
            "-t",
            "q4_0",
            "--quant-mode",
            "gptq",
            "--calibration",
            s(&short),
        ],
        s(&short),
    );
    assert_ne!(run.status.code(), Some(0));
    assert!(!out.exists(), "a refused conversion left {}", out.display());
}

/// The first 200 KB of the training half in `dir`: a short calibration text.
fn short_calibration(dir: &Path) -> Option<PathBuf> {
    let (first_half, _) = training_halves()?;
    let text = dir.join("calibration.txt");
    std::fs::write(&text, &first_half[..200_000]).unwrap();
    Some(text)
}

/// `gguf` loads and gives finite logits over a few hundred tokens.
fn assert_runs_finite(gguf: &Path) {
    let model = Model::load(gguf).unwrap();
    let ids: Vec<u32> = (1..200).collect();
    let mut cache = KvCache::new(&model, ids.len());
    let logits = Session::new(&model).forward(&ids, &mut cache, Logits::All);
    assert!(
        logits.iter().all(|v| v.is_finite()),
        "{}: non-finite logits",
        gguf.display()
    );
}

/// A text of one word repeated makes every position's input the same after the first few:
/// the Hessians have a tiny rank, damping has to carry them, and the file must stay finite.
#[test]
fn singular_hessians_still_give_finite_files() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("same.txt");
    std::fs::write(&text, "the ".repeat(3000)).unwrap();
    let meta = fixture("meta");
    for ty in ["q4_0", "q4_k_m"] {
        let out = dir.path().join(format!("{ty}.gguf"));
        let run = llq(&[
            "convert",
            s(&meta),
            "-o",
            s(&out),
            "-t",
            ty,
            "--quant-mode",
            "gptq",
            "--calibration",
            s(&text),
            "--calibration-chunks",
            "2",
            "--calibration-ctx",
            "256",
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{ty}: {stderr}");
        println!("{ty}: {stderr}");
        assert_runs_finite(&out);
    }
}

/// The same bytes whatever the thread count.
#[test]
fn gptq_files_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let Some(text) = short_calibration(dir.path()) else {
        return;
    };
    let meta = fixture("meta");
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("t{threads}.gguf"));
        llq_ok(&[
            "--threads",
            threads,
            "convert",
            s(&meta),
            "-o",
            s(&out),
            "-t",
            "q4_k_m",
            "--quant-mode",
            "gptq",
            "--calibration",
            s(&text),
            "--calibration-chunks",
            "4",
            "--quiet",
        ]);
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert!(
        outputs[0] == outputs[1],
        "1 and 2 threads wrote different files"
    );
}

/// GPTQ after `--fit` chose the types: the file still fits its budget and runs.
#[test]
fn gptq_rounds_the_types_fit_chose() {
    let dir = tempfile::tempdir().unwrap();
    let Some(text) = short_calibration(dir.path()) else {
        return;
    };
    let out = dir.path().join("fit.gguf");
    let budget = 1_400_000u64;
    let report = dir.path().join("report.json");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&out),
        "--fit",
        &budget.to_string(),
        "--quant-mode",
        "gptq",
        "--calibration",
        s(&text),
        "--calibration-chunks",
        "2",
        "--quiet",
        "--json",
        s(&report),
    ]);
    assert!(std::fs::metadata(&out).unwrap().len() <= budget);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(r["gptq"]["matrices"].as_u64().unwrap() > 0, "{}", r["gptq"]);
    assert_runs_finite(&out);
}
