//! The K-quants (Q2_K ... Q6_K, Q8_K): against ggml (`oracle`), gguf-py's decoders (`dequant`)
//! and error bounds of their own (`roundtrip`). The oracle is tests/py/kquant_oracle.py.

mod dequant;
mod oracle;
mod roundtrip;

use llq_testsupport::Rng;
use llq_types::{GgmlType, QK_K};

/// The K-quants: every type of 256-element super-blocks (Q8_K included).
fn types() -> impl Iterator<Item = GgmlType> {
    GgmlType::all().filter(|ty| ty.block_size() == QK_K)
}

/// The K-quant weight types (Q8_K only holds activations, and importance does not apply to it).
fn weight_types() -> impl Iterator<Item = GgmlType> {
    types().filter(|ty| ty.activation().is_some())
}

/// Elements per test row: two super-blocks, so per-row and per-block state both get exercised.
const ROW: usize = 512;

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
