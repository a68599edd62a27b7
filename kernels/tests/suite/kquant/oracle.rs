//! Byte identity of llq's K-quant encoders with ggml itself (see `ggml_oracle`), with and
//! without importance weights, plus Q8_K decoding against ggml's dequantize_row_q8_K.

use super::{types, weight_types};
use crate::common::{report, Scratch};
use crate::ggml_oracle::{cases, ggml_python, ggml_quantize, importances, mismatches};
use llq_kernels::dequantize_row;
use llq_testsupport::run_py;
use llq_types::GgmlType;

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
        "ggml_oracle.py",
        &["dequantize", ty.name(), &input, &output],
    );
    let want = scratch.read_f32("q8k.f32");
    let mut got = vec![0f32; want.len()];
    dequantize_row(ty, &bytes, &mut got);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "element {i}: llq {g} ggml {w}");
    }
}
