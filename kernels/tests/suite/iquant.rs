//! The i-quants (IQ4_NL, IQ4_XS): byte identity with ggml's encoder with and without importance,
//! decoding against gguf-py (both through `ggml_oracle`), and error bounds of their own.

use crate::common::report;
use crate::ggml_oracle::{
    check_dequantize_against_gguf_py, ggml_python, importances, mismatches, mismatches_on, ROW,
};
use llq_kernels::{dequantize_row, quantize_row};
use llq_testsupport::Rng;
use llq_types::{Family, GgmlType};

fn types() -> impl Iterator<Item = GgmlType> {
    GgmlType::all().filter(|ty| ty.family() == Family::IQuant)
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
    for ty in types() {
        for (name, w) in importances() {
            bad.extend(mismatches(&python, ty, Some((&name, &w))));
        }
    }
    report(bad);
}

/// ggml's table lookup sends a value exactly between two levels to the upper one. Random data
/// almost never lands there, so: in every group the odd elements are exact levels times a power
/// of two `s` (and weigh 1), which makes the best scale exactly `s`; the even ones weigh 0 and sit
/// exactly between two neighbouring levels times `s`.
#[test]
fn midpoints_between_levels_round_as_ggml() {
    let Some(python) = ggml_python() else { return };
    const KV: [f32; 16] = [
        -127., -104., -83., -65., -49., -35., -22., -10., 1., 13., 25., 38., 53., 69., 89., 113.,
    ];
    let row = |s: f32| -> Vec<f32> {
        (0..ROW)
            .map(|i| {
                let k = (i / 2 + i / 32) % 15;
                if i % 2 == 1 {
                    s * KV[k + (i / 32) % 2]
                } else {
                    s * (KV[k] + KV[k + 1]) / 2.0
                }
            })
            .collect()
    };
    let cases: Vec<(String, Vec<f32>)> = [1.0f32, 0.25, 64.0]
        .iter()
        .map(|&s| (format!("midpoints s={s}"), row(s)))
        .collect();
    let odd: Vec<f32> = (0..ROW).map(|i| (i % 2) as f32).collect();
    report(
        types()
            .flat_map(|ty| mismatches_on(&python, ty, &cases, Some(("odd columns", &odd))))
            .collect(),
    );
}

#[test]
fn dequantize_matches_gguf_py() {
    let Some(python) = llq_testsupport::python() else {
        return;
    };
    let mut rng = Rng::new(2025);
    for ty in types() {
        check_dequantize_against_gguf_py(&python, ty, &mut rng);
    }
}

fn round_trip(ty: GgmlType, x: &[f32], importance: Option<&[f32]>) -> Vec<f32> {
    let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut q, importance);
    let mut y = vec![0f32; x.len()];
    dequantize_row(ty, &q, &mut y);
    y
}

fn relative_rmse(x: &[f32], y: &[f32], sigma: f32) -> f32 {
    let se: f64 = x.iter().zip(y).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    ((se / x.len() as f64).sqrt() / f64::from(sigma)) as f32
}

#[test]
fn normal_data_error_is_bounded() {
    let n = 16 * 256;
    for ty in types() {
        for (seed, sigma) in [(1u64, 1.0f32), (2, 0.013), (3, 250.0)] {
            let x = Rng::new(seed).normals(n, sigma);
            let err = relative_rmse(&x, &round_trip(ty, &x, None), sigma);
            println!("{ty} σ={sigma}: relative RMSE {err}");
            assert!(err < 0.095, "{ty} σ={sigma}: relative RMSE {err}");
        }
    }
}
