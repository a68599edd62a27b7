//! `llq imatrix`: the file it writes is llama-imatrix's legacy layout (read back by llq's reader
//! with the same values, accepted by llama.cpp's quantizer), does not depend on the thread
//! count, and holds the mean squared input of each column: checked for blk.0.attn_q.weight
//! against the RMS-normed embeddings computed here, and for every matrix (output.weight too)
//! against a numpy forward pass (tests/py/imatrix_reference.py).

use crate::common::{fixture, llq_ok, python, quantize_with_imatrix_like_llama_cpp, run_py, s};
use llq::Tokenizer;
use llq_formats::gguf::GgufFile;
use llq_formats::imatrix::{Imatrix, LegacyImatrix};
use std::path::{Path, PathBuf};

const CTX: usize = 64;
const CHUNKS: usize = 3;

/// The tiny fixture as an all-F32 GGUF.
fn f32_model(dir: &Path) -> PathBuf {
    let out = dir.join("f32.gguf");
    llq_ok(&[
        "convert",
        s(&fixture("hf")),
        "-o",
        s(&out),
        "-t",
        "f32",
        "--quiet",
    ]);
    out
}

/// Calibration text that needs no outside data: the repository's README.
fn text() -> PathBuf {
    crate::common::root().join("README.md")
}

fn imatrix(model: &Path, out: &Path, extra: &[&str]) -> Vec<u8> {
    let ctx = CTX.to_string();
    let chunks = CHUNKS.to_string();
    let text = text();
    let mut args = vec![
        "imatrix",
        s(model),
        "-f",
        s(&text),
        "-o",
        s(out),
        "--ctx",
        &ctx,
        "--chunks",
        &chunks,
        "--quiet",
    ];
    args.extend(extra);
    llq_ok(&args);
    std::fs::read(out).unwrap()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn round_trips_and_is_the_same_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let model = f32_model(dir.path());
    let one = imatrix(&model, &dir.path().join("t1.dat"), &["--threads", "1"]);
    let two = imatrix(&model, &dir.path().join("t2.dat"), &["--threads", "2"]);
    assert!(
        one == two,
        "--threads 1 and --threads 2 wrote different files"
    );

    let file = LegacyImatrix::parse(&one).unwrap();
    assert_eq!(file.to_bytes(), one, "re-encoding changes the bytes");
    assert_eq!(
        file.trailer,
        Some((CHUNKS as u32, text().to_string_lossy().into_owned()))
    );
    // Every block matrix, sorted by name, each summed over CHUNKS chunks; no output.weight.
    let mut want: Vec<String> = (0..4)
        .flat_map(|i| {
            [
                "attn_q",
                "attn_k",
                "attn_v",
                "attn_output",
                "ffn_gate",
                "ffn_up",
                "ffn_down",
            ]
            .map(|t| format!("blk.{i}.{t}.weight"))
        })
        .collect();
    want.sort();
    let names: Vec<&str> = file.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, want);
    for e in &file.entries {
        assert_eq!(e.ncall, CHUNKS as i32, "{}", e.name);
        let cols = if e.name.contains("ffn_down") {
            416
        } else {
            256
        };
        assert_eq!(e.sums.len(), cols, "{}", e.name);
        assert!(
            e.sums.iter().all(|v| v.is_finite() && *v > 0.0),
            "{}",
            e.name
        );
    }
    // llq's reader (the one --imatrix uses) sees sums / ncall.
    let m = Imatrix::open(&dir.path().join("t1.dat")).unwrap();
    assert_eq!(m.chunks, Some(CHUNKS as u32));
    for e in &file.entries {
        let got = &m.entries[&e.name];
        let want: Vec<f32> = e.sums.iter().map(|v| v / CHUNKS as f32).collect();
        assert_eq!(got, &want, "{}", e.name);
    }

    let with_output = imatrix(&model, &dir.path().join("o.dat"), &["--process-output"]);
    let file = LegacyImatrix::parse(&with_output).unwrap();
    let out = file
        .entries
        .iter()
        .find(|e| e.name == "output.weight")
        .expect("--process-output collects output.weight");
    assert_eq!((out.ncall, out.sums.len()), (CHUNKS as i32, 256));
}

/// The input of blk.0.attn_q.weight is each token's embedding, RMS-normed and scaled by
/// blk.0.attn_norm.weight: its mean square per column, computed here in f64, is the entry.
#[test]
fn attn_q_entry_is_the_mean_square_of_the_normed_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let model = f32_model(dir.path());
    let bytes = imatrix(&model, &dir.path().join("i.dat"), &[]);
    let m = Imatrix::parse(&bytes).unwrap();
    let got = &m.entries["blk.0.attn_q.weight"];

    let gguf = GgufFile::open(&model).unwrap();
    let tensor = |name: &str| f32s(gguf.tensor_data(gguf.tensor(name).unwrap()));
    let (embd, norm) = (
        tensor("token_embd.weight"),
        tensor("blk.0.attn_norm.weight"),
    );
    let d = norm.len();
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    let tokens = tok.tokenize(&std::fs::read_to_string(text()).unwrap(), true);
    let mut sum = vec![0f64; d];
    for c in 0..CHUNKS {
        for (i, &t) in tokens[c * CTX..(c + 1) * CTX].iter().enumerate() {
            let t = if i == 0 { tok.bos() } else { t } as usize;
            let row = &embd[t * d..(t + 1) * d];
            let ms = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / d as f64;
            let scale = 1.0 / (ms + 1e-5).sqrt();
            for ((s, &v), &g) in sum.iter_mut().zip(row).zip(&norm) {
                *s += (f64::from(v) * scale * f64::from(g)).powi(2);
            }
        }
    }
    let n = (CHUNKS * CTX) as f64;
    let mut worst = 0f64;
    for (j, (&g, s)) in got.iter().zip(&sum).enumerate() {
        let want = s / n;
        let err = (f64::from(g) - want).abs() / want;
        worst = worst.max(err);
        // Measured 1.0e-7 (SIMD and scalar kernels; f32 sums against f64).
        assert!(err < 5e-7, "column {j}: imatrix {g}, independent {want}");
    }
    println!("largest relative difference: {worst:.1e}");
}

/// llama.cpp's llama_model_quantize takes the computed file (read as llama-quantize reads it)
/// and writes the same bytes as `llq quantize --imatrix` with it.
#[test]
fn llama_cpp_quantizes_with_the_computed_file() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = f32_model(dir.path());
    let dat = dir.path().join("i.dat");
    imatrix(&model, &dat, &[]);
    let ours = dir.path().join("ours");
    quantize_with_imatrix_like_llama_cpp(&py, &model, &dat, &ours, &["Q4_0", "Q4_K_M", "Q2_K"]);
}

/// Every entry (and output.weight with --process-output) equals the mean squared input that an
/// independent float64 numpy forward pass over the same chunks gives, to 3e-6 relative
/// (tests/py/imatrix_reference.py).
#[test]
fn every_entry_matches_a_numpy_forward_pass() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = f32_model(dir.path());
    let dat = dir.path().join("i.dat");
    imatrix(&model, &dat, &["--process-output"]);

    // The text's ids, tokenized once with BOS as `llq imatrix` does; the script cuts the chunks.
    let gguf = GgufFile::open(&model).unwrap();
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    let tokens = tok.tokenize(&std::fs::read_to_string(text()).unwrap(), true);
    let ids = dir.path().join("tokens.u32");
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    std::fs::write(&ids, bytes).unwrap();

    let (ctx, chunks) = (CTX.to_string(), CHUNKS.to_string());
    let out = run_py(
        &py,
        "imatrix_reference.py",
        &[
            s(&model),
            s(&ids),
            &ctx,
            &chunks,
            s(&dat),
            "--process-output",
        ],
    );
    // The script exits 1 on any mismatch; also make sure it compared all 29 matrices.
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["entries"].as_object().unwrap().len(),
        4 * 7 + 1,
        "{out}"
    );
    let worst = report["entries"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["max_rel_err"].as_f64().unwrap())
        .fold(0f64, f64::max);
    println!("largest relative difference from numpy: {worst:.1e}");
}
