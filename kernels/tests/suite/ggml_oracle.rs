//! The oracle of the types ggml encodes with a search (the K-quants and the i-quants):
//! ggml_quantize_chunk itself, from the libggml-base.so that llama-cpp-python bundles, and
//! gguf-py's decoders, both driven by tests/py/ggml_oracle.py; and the rows they are fed. Needs
//! LLQ_PYTHON (with llama_cpp, gguf and numpy) and LLQ_GGML_LIB; a ggml that cannot be loaded
//! fails.

use crate::common::{f32_bytes, Scratch};
use llq_kernels::{dequantize_row, factor_offsets, quantize_row};
use llq_testsupport::{run_py, Rng};
use llq_types::GgmlType;
use std::path::{Path, PathBuf};

/// Elements per test row: two super-blocks, so per-row and per-block state both get exercised.
pub const ROW: usize = 512;

/// Named rows of `ROW` values covering ordinary data and the edge cases of the scale searches.
pub fn cases() -> Vec<(String, Vec<f32>)> {
    let mut rng = Rng::new(0x5eed);
    let mut rows = Vec::new();
    for seed in 0..4u64 {
        for scale in [1e-3f32, 0.02, 1.0, 300.0] {
            let mut r = Rng::new(seed * 1000 + 7);
            rows.push((
                format!("normal seed {seed} scale {scale}"),
                r.normals(ROW, scale),
            ));
        }
    }
    rows.push(("zeros".into(), vec![0.0; ROW]));
    let mut outlier = rng.normals(ROW, 0.05);
    outlier[37] = 1e4;
    outlier[300] = -3e3;
    rows.push(("outliers".into(), outlier));
    rows.push(("constant 0.5".into(), vec![0.5; ROW]));
    rows.push(("constant -2".into(), vec![-2.0; ROW]));
    rows.push(("tiny 1e-30".into(), rng.normals(ROW, 1e-30)));
    let signs: Vec<f32> = (0..ROW)
        .map(|_| {
            if rng.next_u64() & 1 == 0 {
                65504.0
            } else {
                -65504.0
            }
        })
        .collect();
    rows.push(("+-65504".into(), signs));
    let big: Vec<f32> = rng
        .normals(ROW, 1.0)
        .iter()
        .map(|v| (v * 20000.0).clamp(-65504.0, 65504.0))
        .collect();
    rows.push(("normal*20000 clamped to 65504".into(), big));
    let alt: Vec<f32> = (0..ROW)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    rows.push(("alternating +-1".into(), alt));
    let alt_ramp: Vec<f32> = (0..ROW)
        .map(|i| (i % 17) as f32 * if i % 2 == 0 { 0.1 } else { -0.1 })
        .collect();
    rows.push(("alternating ramp".into(), alt_ramp));
    rows.push((
        "all positive".into(),
        rng.normals(ROW, 1.0)
            .iter()
            .map(|v| v.abs() + 0.1)
            .collect(),
    ));
    rows.push((
        "all negative".into(),
        rng.normals(ROW, 1.0).iter().map(|v| -v.abs()).collect(),
    ));
    let mut sparse = vec![0.0f32; ROW];
    for (i, v) in sparse.iter_mut().enumerate().step_by(29) {
        *v = (i as f32 - 200.0) * 0.01;
    }
    rows.push(("sparse".into(), sparse));
    let mut half_zero = rng.normals(ROW, 1.0);
    half_zero[..ROW / 2].fill(0.0);
    rows.push(("first block zero".into(), half_zero));
    for i in 0..48 {
        rows.push((format!("mixed shapes #{i}"), mixed_row(&mut rng)));
    }
    rows
}

/// A row whose 16-element groups each draw a shape (normal, cubed normal, uniform, one-sided,
/// sparse, constant) and a log-uniform scale, to reach the rarer branches of the searches.
fn mixed_row(rng: &mut Rng) -> Vec<f32> {
    let mut row = Vec::with_capacity(ROW);
    while row.len() < ROW {
        let scale = 10f32.powf(rng.uniform() as f32 * 7.0 - 4.0);
        let shape = rng.next_u64() % 6;
        for _ in 0..16 {
            let v = match shape {
                0 => rng.normal(),
                1 => rng.normal().powi(3),
                2 => rng.uniform() as f32 * 2.0 - 1.0,
                3 => rng.normal().abs() + 0.3,
                4 if rng.next_u64().is_multiple_of(5) => rng.normal(),
                4 => 0.0,
                _ => 0.7,
            };
            row.push(v * scale);
        }
    }
    row
}

/// Positive per-column importance vectors: mild and heavy-tailed.
pub fn importances() -> Vec<(String, Vec<f32>)> {
    let mut rng = Rng::new(99);
    let mild = (0..ROW).map(|_| 0.1 + rng.uniform() as f32).collect();
    let heavy = (0..ROW).map(|_| (3.0 * rng.normal()).exp()).collect();
    vec![("mild".into(), mild), ("heavy-tailed".into(), heavy)]
}

/// The interpreter, after the oracle has loaded ggml (or `None` when a reference is missing).
pub fn ggml_python() -> Option<PathBuf> {
    let (python, _) = llq_testsupport::python_and_ggml()?;
    let lib = run_py(&python, "ggml_oracle.py", &["probe"]);
    println!("oracle: {}", lib.trim());
    Some(python)
}

/// ggml's encoding of `rows` (each `ROW` long), with `importance` shared by all rows.
pub fn ggml_quantize(
    python: &Path,
    ty: GgmlType,
    rows: &[Vec<f32>],
    importance: Option<&[f32]>,
) -> Vec<u8> {
    let scratch = Scratch::new("ggml-oracle");
    scratch.write("in.f32", &f32_bytes(&rows.concat()));
    let (n, input, output) = (
        ROW.to_string(),
        scratch.arg("in.f32"),
        scratch.arg("out.bin"),
    );
    let mut args = vec!["quantize", ty.name(), &n, &input, &output];
    let imatrix = scratch.arg("imatrix.f32");
    if let Some(w) = importance {
        scratch.write("imatrix.f32", &f32_bytes(w));
        args.push(&imatrix);
    }
    run_py(python, "ggml_oracle.py", &args);
    scratch.read("out.bin")
}

/// Compare llq with ggml on every case of [`cases`]; returns a description of each mismatching
/// row.
pub fn mismatches(python: &Path, ty: GgmlType, importance: Option<(&str, &[f32])>) -> Vec<String> {
    mismatches_on(python, ty, &cases(), importance)
}

/// Compare llq with ggml on named rows of [`ROW`] values.
pub fn mismatches_on(
    python: &Path,
    ty: GgmlType,
    cases: &[(String, Vec<f32>)],
    importance: Option<(&str, &[f32])>,
) -> Vec<String> {
    let rows: Vec<Vec<f32>> = cases.iter().map(|(_, r)| r.clone()).collect();
    let want = ggml_quantize(python, ty, &rows, importance.map(|(_, w)| w));
    let row_bytes = ty.row_bytes(ROW).unwrap();
    assert_eq!(want.len(), rows.len() * row_bytes);
    let mut bad = Vec::new();
    for ((name, row), want) in cases.iter().zip(want.chunks_exact(row_bytes)) {
        let mut got = vec![0u8; row_bytes];
        quantize_row(ty, row, &mut got, importance.map(|(_, w)| w));
        if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
            let differing = got.iter().zip(want).filter(|(a, b)| a != b).count();
            bad.push(format!(
                "{ty} {name} (importance {}): {differing} bytes differ, first at {at} \
                 (block {}, offset {}): llq {:#04x} ggml {:#04x}",
                importance.map_or("none", |(n, _)| n),
                at / ty.type_size(),
                at % ty.type_size(),
                got[at],
                want[at]
            ));
        }
    }
    bad
}

pub fn random_blocks(ty: GgmlType, blocks: usize, rng: &mut Rng) -> Vec<u8> {
    let size = ty.type_size();
    let mut bytes: Vec<u8> = (0..blocks * size).map(|_| rng.next_u64() as u8).collect();
    for block in bytes.chunks_exact_mut(size) {
        for &at in factor_offsets(ty) {
            // Magnitudes from 1e-6 to 1e2, either sign (negative mins do occur in the wild).
            let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
            let v = (rng.normal() * 4.0).exp2() * 0.01 * sign;
            block[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
    }
    bytes
}

/// Decode random blocks of `ty` with llq and with gguf-py; assert equal bits.
pub fn check_dequantize_against_gguf_py(python: &Path, ty: GgmlType, rng: &mut Rng) {
    let blocks = 64;
    let bytes = random_blocks(ty, blocks, rng);
    let scratch = Scratch::new("gguf-py-dequantize");
    scratch.write("blocks.bin", &bytes);
    let (input, output) = (scratch.arg("blocks.bin"), scratch.arg("values.f32"));
    run_py(
        python,
        "ggml_oracle.py",
        &["dequantize", ty.name(), &input, &output],
    );
    let want = scratch.read_f32("values.f32");
    assert_eq!(want.len(), blocks * ty.block_size(), "{ty}");
    let mut got = vec![0f32; want.len()];
    dequantize_row(ty, &bytes, &mut got);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{ty} element {i} (block {}): llq {g} gguf-py {w}",
            i / ty.block_size()
        );
    }
}
