//! Sanity of the K-quants without any oracle: quantize → dequantize error on normal data stays
//! within each type's expected range, with and without importance weights, and degenerate rows
//! decode to what they should.

use super::{types, weight_types};
use llq_kernels::{dequantize_row, quantize_row};
use llq_testsupport::Rng;
use llq_types::GgmlType;

/// Upper bounds on RMSE relative to σ for N(0, σ²) data; ggml's encoders land about 20% below.
fn rmse_bound(ty: GgmlType) -> f32 {
    match ty {
        GgmlType::Q2_K => 0.35,
        GgmlType::Q3_K => 0.19,
        GgmlType::Q4_K => 0.09,
        GgmlType::Q5_K => 0.046,
        GgmlType::Q6_K => 0.023,
        GgmlType::Q8_K => 0.008,
        _ => unreachable!("{ty}: no error bound"),
    }
}

fn round_trip(ty: GgmlType, x: &[f32], importance: Option<&[f32]>) -> Vec<f32> {
    let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut q, importance);
    let mut y = vec![0f32; x.len()];
    dequantize_row(ty, &q, &mut y);
    y
}

fn rmse(a: &[f32], b: &[f32]) -> f32 {
    let se: f64 = a.iter().zip(b).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    (se / a.len() as f64).sqrt() as f32
}

#[test]
fn normal_data_error_is_bounded() {
    let n = 16 * 256;
    for ty in types() {
        for (seed, sigma) in [(1u64, 1.0f32), (2, 0.013), (3, 250.0)] {
            let x = Rng::new(seed).normals(n, sigma);
            let err = rmse(&x, &round_trip(ty, &x, None)) / sigma;
            assert!(err < rmse_bound(ty), "{ty} σ={sigma}: relative RMSE {err}");
            if ty.activation().is_some() {
                let w: Vec<f32> = (0..n).map(|i| 0.5 + (i % 7) as f32 * 0.25).collect();
                let err = rmse(&x, &round_trip(ty, &x, Some(&w))) / sigma;
                assert!(
                    err < rmse_bound(ty) * 1.1,
                    "{ty} σ={sigma} with importance: relative RMSE {err}"
                );
            }
        }
    }
}

#[test]
fn zero_rows_decode_to_zero() {
    let x = vec![0f32; 512];
    for ty in types() {
        assert!(round_trip(ty, &x, None).iter().all(|&v| v == 0.0), "{ty}");
    }
}

#[test]
fn importance_shifts_error_to_unimportant_columns() {
    // Columns with 100× the importance should come out more accurate than the rest.
    let n = 16 * 256;
    let x = Rng::new(5).normals(n, 1.0);
    let w: Vec<f32> = (0..n)
        .map(|i| if i % 4 == 0 { 100.0 } else { 1.0 })
        .collect();
    for ty in weight_types() {
        let y = round_trip(ty, &x, Some(&w));
        let (mut hi, mut lo) = ((0.0, 0.0), (0.0, 0.0));
        for (i, (a, b)) in x.iter().zip(&y).enumerate() {
            let acc = if i % 4 == 0 { &mut hi } else { &mut lo };
            acc.0 += f64::from(a - b).powi(2);
            acc.1 += 1.0;
        }
        let (hi, lo) = ((hi.0 / hi.1).sqrt(), (lo.0 / lo.1).sqrt());
        assert!(hi < lo, "{ty}: important RMSE {hi} vs others {lo}");
    }
}
