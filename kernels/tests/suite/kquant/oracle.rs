//! Byte identity of llq's K-quant encoders with ggml itself (ggml_quantize_chunk from the
//! libggml-base.so that llama-cpp-python bundles, driven by tests/py/kquant_oracle.py), with and
//! without importance weights, plus Q8_K decoding against ggml's dequantize_row_q8_K. Needs
//! LLQ_PYTHON (with llama_cpp installed) and LLQ_GGML_LIB; a ggml that cannot be loaded fails.

use super::{cases, importances, types, weight_types, ROW};
use crate::common::{f32_bytes, report, Scratch};
use llq_kernels::{dequantize_row, quantize_row};
use llq_testsupport::run_py;
use llq_types::GgmlType;
use std::path::{Path, PathBuf};

/// The interpreter, after the oracle has loaded ggml (or `None` when a reference is missing).
fn ggml_python() -> Option<PathBuf> {
    let (python, _) = llq_testsupport::python_and_ggml()?;
    let lib = run_py(&python, "kquant_oracle.py", &["probe"]);
    println!("oracle: {}", lib.trim());
    Some(python)
}

/// ggml's encoding of `rows` (each `ROW` long), with `importance` shared by all rows.
fn ggml_quantize(
    python: &Path,
    ty: GgmlType,
    rows: &[Vec<f32>],
    importance: Option<&[f32]>,
) -> Vec<u8> {
    let scratch = Scratch::new("kquant-ggml");
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
    run_py(python, "kquant_oracle.py", &args);
    scratch.read("out.bin")
}

/// Compare llq with ggml on every case; returns a description of each mismatching row.
fn mismatches(python: &Path, ty: GgmlType, importance: Option<(&str, &[f32])>) -> Vec<String> {
    let cases = cases();
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

#[test]
fn quantize_matches_ggml_without_importance() {
    let Some(python) = ggml_python() else { return };
    report(
        types()
            .flat_map(|ty| mismatches(&python, ty, None))
            .collect(),
    );
}

#[test]
fn quantize_matches_ggml_with_importance() {
    let Some(python) = ggml_python() else { return };
    let mut bad = Vec::new();
    for ty in weight_types() {
        for (name, w) in importances() {
            bad.extend(mismatches(&python, ty, Some((&name, &w))));
        }
    }
    report(bad);
}

#[test]
fn q8_k_dequantize_matches_ggml() {
    let Some(python) = ggml_python() else { return };
    let ty = GgmlType::Q8_K;
    let rows: Vec<Vec<f32>> = cases().into_iter().map(|(_, r)| r).collect();
    let bytes = ggml_quantize(&python, ty, &rows, None);
    let scratch = Scratch::new("kquant-q8k");
    scratch.write("q8k.bin", &bytes);
    let (input, output) = (scratch.arg("q8k.bin"), scratch.arg("q8k.f32"));
    run_py(
        &python,
        "kquant_oracle.py",
        &["dequantize", ty.name(), &input, &output],
    );
    let want = scratch.read_f32("q8k.f32");
    let mut got = vec![0f32; want.len()];
    dequantize_row(ty, &bytes, &mut got);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "element {i}: llq {g} ggml {w}");
    }
}
