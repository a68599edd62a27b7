//! The legacy types against outside oracles, through tests/py/quants_oracle.py:
//! - gguf-py's numpy port of ggml's `quantize_row_*_ref` and its dequantizers (needs
//!   LLQ_PYTHON, an interpreter with `gguf` and `numpy`);
//! - the real ggml's `ggml_quantize_chunk`, with and without an importance matrix (needs also
//!   LLQ_GGML_LIB, a libggml-base.so such as the one llama-cpp-python ships).
//!
//! Bytes must be identical and decoded floats bit-identical (any NaN equals any NaN).

use super::{adversarial_rows, types, N};
use crate::common::{report, same_f32, Scratch};
use llq_kernels::{dequantize_row, factor_offsets, quantize_row};
use llq_testsupport::Rng;
use llq_types::GgmlType;
use std::path::Path;

/// Run tests/py/quants_oracle.py once on `rows`, writing into `scratch`, with extra `args`.
fn run_oracle(python: &Path, scratch: &Scratch, rows: &[(String, Vec<f32>)], args: &[&str]) {
    let flat: Vec<f32> = rows.iter().flat_map(|(_, r)| r.iter().copied()).collect();
    scratch.write_f32("rows.f32", &flat);
    let (rows, n, dir) = (scratch.arg("rows.f32"), N.to_string(), scratch.arg(""));
    let mut all = vec![rows.as_str(), n.as_str(), dir.as_str()];
    all.extend(args);
    llq_testsupport::run_py(python, "quants_oracle.py", &all);
}

/// Quantize every row with llq and compare with `expected` (all rows' bytes, concatenated).
/// Returns the mismatch descriptions, at most a few per type.
fn compare_quantized(
    ty: GgmlType,
    rows: &[(String, Vec<f32>)],
    importance: Option<&[f32]>,
    expected: &[u8],
    oracle: &str,
) -> Vec<String> {
    let row_bytes = ty.row_bytes(N).unwrap();
    assert_eq!(
        expected.len(),
        rows.len() * row_bytes,
        "{ty} {oracle} output size"
    );
    let mut bad = Vec::new();
    for ((label, row), want) in rows.iter().zip(expected.chunks(row_bytes)) {
        let mut got = vec![0u8; row_bytes];
        quantize_row(ty, row, &mut got, importance);
        let size = ty.type_size();
        for (b, (g, w)) in got.chunks(size).zip(want.chunks(size)).enumerate() {
            let x = &row[32 * b..32 * b + 32];
            if oracle == "gguf-py" && zero_sign_only(ty, x, g, w) {
                continue;
            }
            if g != w && bad.len() < 8 {
                bad.push(format!(
                    "{ty} vs {oracle}, row '{label}' block {b}:\n  x    {:?}\n  llq  {g:?}\n  want {w:?}",
                    x
                ));
            }
        }
    }
    bad
}

/// gguf-py and ggml disagree on blocks of signed zeros: ggml keeps the first of equal values
/// (starting from +0.0 for the absmax, so an all-zero block gets d = 0/-8 = -0.0), numpy's
/// argmax/min/max pick whichever zero their loop lands on. llq follows ggml (checked against it
/// in the ggml test); here such blocks may differ in the sign bit of their fp16 factors (d, m).
fn zero_sign_only(ty: GgmlType, x: &[f32], got: &[u8], want: &[u8]) -> bool {
    let sign_byte = |i: usize| factor_offsets(ty).iter().any(|&at| i == at + 1);
    x.iter().all(|&v| v == 0.0)
        && got
            .iter()
            .zip(want)
            .enumerate()
            .all(|(i, (g, w))| g == w || (sign_byte(i) && g ^ w == 0x80))
}

/// Decode `bytes` with llq and compare with `expected` floats.
fn compare_dequantized(ty: GgmlType, bytes: &[u8], expected: &[f32], what: &str) -> Vec<String> {
    let blocks = bytes.len() / ty.type_size();
    assert_eq!(expected.len(), blocks * 32, "{ty} {what} decoded size");
    let mut got = vec![0f32; expected.len()];
    dequantize_row(ty, &bytes[..blocks * ty.type_size()], &mut got);
    got.iter()
        .zip(expected)
        .enumerate()
        .filter(|(_, (g, w))| !same_f32(**g, **w))
        .take(8)
        .map(|(i, (g, w))| {
            format!(
                "{ty} {what}: element {i} (block {}): llq {g:e} gguf-py {w:e}",
                i / 32
            )
        })
        .collect()
}

#[test]
fn legacy_types_match_gguf_py() {
    let Some(python) = llq_testsupport::python() else {
        return;
    };
    let scratch = Scratch::new("legacy-gguf-py");
    let rows = adversarial_rows();
    // Arbitrary bytes for the decoders: every f16 scale pattern, NaN and inf included.
    let mut rng = Rng::new(5);
    let raw: Vec<u8> = (0..24 * 34 * 64).map(|_| rng.next_u64() as u8).collect();
    scratch.write("raw.bin", &raw);
    run_oracle(
        &python,
        &scratch,
        &rows,
        &["--raw", &scratch.arg("raw.bin")],
    );

    let mut bad = Vec::new();
    for ty in types() {
        let want = scratch.read(&format!("{ty}.q"));
        bad.extend(compare_quantized(ty, &rows, None, &want, "gguf-py"));
        // Decode the oracle's bytes, so a quantizer mismatch cannot hide a decoder one.
        bad.extend(compare_dequantized(
            ty,
            &want,
            &scratch.read_f32(&format!("{ty}.deq")),
            "rows",
        ));
        let raw_want = scratch.read_f32(&format!("{ty}.raw.deq"));
        bad.extend(compare_dequantized(ty, &raw, &raw_want, "random bytes"));
    }
    report(bad);
}

#[test]
fn legacy_types_match_ggml_with_and_without_imatrix() {
    let Some((python, lib)) = llq_testsupport::python_and_ggml() else {
        return;
    };
    let lib = lib.to_str().expect("utf-8 library path");
    let scratch = Scratch::new("legacy-ggml");
    let rows = adversarial_rows();
    // Per-column importance as an imatrix holds it (mean squared activation), with a few dead
    // columns and a wide dynamic range.
    let mut rng = Rng::new(17);
    let importance: Vec<f32> = (0..N)
        .map(|i| {
            if i % 61 == 7 {
                0.0
            } else {
                (rng.normal() * 3.0).exp()
            }
        })
        .collect();
    scratch.write_f32("imatrix.f32", &importance);
    let imatrix = scratch.arg("imatrix.f32");
    run_oracle(
        &python,
        &scratch,
        &rows,
        &["--ggml", lib, "--imatrix", &imatrix],
    );

    let mut bad = Vec::new();
    for ty in types() {
        let plain = scratch.read(&format!("{ty}.ggml.q"));
        bad.extend(compare_quantized(ty, &rows, None, &plain, "ggml"));
        let weighted = scratch.read(&format!("{ty}.ggml_imat.q"));
        bad.extend(compare_quantized(
            ty,
            &rows,
            Some(&importance),
            &weighted,
            "ggml+imatrix",
        ));
    }
    report(bad);
}
