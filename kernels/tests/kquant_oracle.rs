//! Byte identity of llq's K-quant encoders with ggml itself (ggml_quantize_chunk from the
//! libggml-base.so that llama-cpp-python bundles, driven by tests/py/kquant_oracle.py), with and
//! without importance weights, plus Q8_K decoding against ggml's dequantize_row_q8_K.
//! Needs LLQ_PYTHON pointing at an interpreter with llama_cpp installed; skips otherwise.

mod kquant_common;

use kquant_common::*;
use llq_kernels::{dequantize_row, quantize_row};
use llq_types::GgmlType;
/// The interpreter, or `None` (with the reason printed) when ggml cannot be loaded.
fn ggml_python() -> Option<String> {
    let python = python()?;
    match run_oracle(&python, &["probe"]) {
        Ok(lib) => {
            println!("oracle: {}", lib.trim());
            Some(python)
        }
        Err((Some(3), why)) => {
            println!("SKIPPED: ggml not loadable from {python}: {}", why.trim());
            None
        }
        Err((code, why)) => panic!("oracle probe failed ({code:?}): {why}"),
    }
}

/// ggml's encoding of `rows` (each `ROW` long), with `importance` shared by all rows.
fn ggml_quantize(
    python: &str,
    ty: GgmlType,
    rows: &[Vec<f32>],
    importance: Option<&[f32]>,
) -> Vec<u8> {
    let input = temp_path("in.f32");
    let output = temp_path("out.bin");
    let imatrix = temp_path("imatrix.f32");
    std::fs::write(&input, f32_bytes(&rows.concat())).unwrap();
    let n = ROW.to_string();
    let mut args = vec![
        "quantize",
        ty.name(),
        &n,
        input.to_str().unwrap(),
        output.to_str().unwrap(),
    ];
    if let Some(w) = importance {
        std::fs::write(&imatrix, f32_bytes(w)).unwrap();
        args.push(imatrix.to_str().unwrap());
    }
    let result = run_oracle(python, &args);
    let bytes = std::fs::read(&output);
    for p in [&input, &output, &imatrix] {
        let _ = std::fs::remove_file(p);
    }
    result.unwrap_or_else(|(code, why)| panic!("oracle quantize {ty} failed ({code:?}): {why}"));
    bytes.unwrap()
}

/// Compare llq with ggml on every case; returns a description of each mismatching row.
fn mismatches(python: &str, ty: GgmlType, importance: Option<(&str, &[f32])>) -> Vec<String> {
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
    let bad: Vec<String> = K_TYPES
        .iter()
        .flat_map(|&ty| mismatches(&python, ty, None))
        .collect();
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn quantize_matches_ggml_with_importance() {
    let Some(python) = ggml_python() else { return };
    let mut bad = Vec::new();
    // Q8_K quantizes activations; importance does not apply to it.
    for &ty in &K_TYPES[..5] {
        for (name, w) in importances() {
            bad.extend(mismatches(&python, ty, Some((&name, &w))));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn q8_k_dequantize_matches_ggml() {
    let Some(python) = ggml_python() else { return };
    let ty = GgmlType::Q8_K;
    let rows: Vec<Vec<f32>> = cases().into_iter().map(|(_, r)| r).collect();
    let bytes = ggml_quantize(&python, ty, &rows, None);
    let input = temp_path("q8k.bin");
    let output = temp_path("q8k.f32");
    std::fs::write(&input, &bytes).unwrap();
    let result = run_oracle(
        &python,
        &[
            "dequantize",
            "Q8_K",
            input.to_str().unwrap(),
            output.to_str().unwrap(),
        ],
    );
    let want = std::fs::read(&output).map(|b| f32_from_bytes(&b));
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    result.unwrap_or_else(|(code, why)| panic!("oracle dequantize failed ({code:?}): {why}"));
    let want = want.unwrap();
    let mut got = vec![0f32; want.len()];
    dequantize_row(ty, &bytes, &mut got);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "element {i}: llq {g} ggml {w}");
    }
}
