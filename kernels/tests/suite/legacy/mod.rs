//! The legacy 32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): against ggml and gguf-py
//! (`oracle`) and within a quantization step (`roundtrip`).

mod oracle;
mod roundtrip;

use llq_testsupport::Rng;
use llq_types::{Family, GgmlType};

/// The legacy weight types: 32-element blocks with a dot product (Q8_1 only holds activations).
fn types() -> impl Iterator<Item = GgmlType> {
    GgmlType::all().filter(|ty| ty.family() == Family::Legacy && ty.activation().is_some())
}

/// Row length: 8 blocks, so one row can hold 8 differently built blocks.
const N: usize = 256;

/// A row built block by block; `f(block, j)` gives element j of a block.
fn by_block(f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    (0..N).map(|i| f(i / 32, i % 32)).collect()
}

/// Rows meant to hit every rounding rule and edge case, each with a label for failures.
fn adversarial_rows() -> Vec<(String, Vec<f32>)> {
    let mut rows = Vec::new();
    let mut rng = Rng::new(99);
    for seed in 1..=3u64 {
        for scale in [1e-3f32, 1e-1, 1.0, 30.0, 1e3] {
            rows.push((
                format!("normal seed {seed} scale {scale}"),
                Rng::new(seed).normals(N, scale),
            ));
        }
    }
    rows.push(("zeros".into(), vec![0.0; N]));
    let mut outlier = rng.normals(N, 1e-2);
    outlier[5] = 1e4;
    outlier[200] = -3e3;
    rows.push(("outliers".into(), outlier));

    // Exact ties: each block's extreme fixes d to a power of two, the rest sit at k + 1/2 steps.
    // Q4_0 rounds them up (trunc(x/d + 8.5)), Q8_0 away from zero.
    let half = |j: usize, lo: f32, span: usize| lo + (j % span) as f32 + 0.5;
    rows.push((
        "ties".into(),
        by_block(|b, j| match (b, j) {
            (0, 0) => -8.0, // Q4_0 d = 1
            (0, _) => half(j, -8.0, 16),
            (1, 0) => 127.0, // Q8_0 d = 1
            (1, _) => half(j * 7, -127.0, 254),
            (2, 0) => 0.0, // Q4_1 min 0, d = 1
            (2, 1) => 15.0,
            (2, _) => half(j, 0.0, 15),
            (3, 0) => -16.0, // Q5_0 d = 1
            (3, _) => half(j, -16.0, 32),
            (4, 0) => 0.0, // Q5_1 min 0, d = 1
            (4, 1) => 31.0,
            (4, _) => half(j, 0.0, 31),
            (5, 0) => -8.0 / 1024.0,
            (5, _) => half(j, -8.0, 16) / 1024.0,
            (6, 0) => 127.0 * 32.0,
            (6, _) => half(j * 5, -127.0, 254) * 32.0,
            // Inexact d: ties up to the last bit of x * (1/d).
            (_, 0) => 0.8,
            (_, _) => half(j, -8.0, 16) * 0.1,
        }),
    ));
    // Tiny magnitudes: f32 subnormals; scales whose f32 reciprocal overflows (amax below ~3.7e-37
    // for Q8_0, ~2.4e-38 for Q4_0); scales that underflow f16.
    rows.push((
        "subnormal".into(),
        by_block(|b, j| {
            let s = if j % 3 == 0 { -1.0 } else { 1.0 } * (1.0 + j as f32 / 7.0);
            s * [1e-40, 3e-39, 1e-37, 2e-38, 1e-45, 1e-30, 1e-5, 7e-8][b]
        }),
    ));
    let mut mixed_tiny = rng.normals(N, 1e-3);
    mixed_tiny[3] = 1e-40;
    mixed_tiny[40] = -1e-41;
    rows.push(("normal with subnormals".into(), mixed_tiny));
    // Around the f16 maximum: d or m beyond 65504 becomes inf (65520 rounds up to inf).
    rows.push((
        "f16 max".into(),
        by_block(|b, j| {
            let s = if j % 2 == 0 { 1.0 } else { -1.0 };
            let t = j as f32 / 32.0;
            match b {
                0 => s * 65504.0 * (1.0 - t / 2.0),
                1 => 65520.0 * (t - 0.5),
                2 => s * 70000.0,
                3 => -65504.0 * 8.0 * t,
                4 => 65504.0 * 9.0 * (t - 0.3),
                5 => 65504.0 * 16.0 * t,
                6 => -65504.0,
                _ => s * 1e6 * t,
            }
        }),
    ));
    // Equal |max| with both signs: the first one decides the sign of d.
    rows.push((
        "equal absmax".into(),
        by_block(|b, j| {
            let first = if b % 2 == 0 { 3.0 } else { -3.0 };
            match j {
                j if j == b % 4 => first,
                j if j == 31 - b => -first,
                _ => ((j * 37 % 11) as f32 - 5.0) * 0.25,
            }
        }),
    ));
    rows.push((
        "constant".into(),
        by_block(|b, _| [0.7, -2.5, 1e-3, 100.0, -1e-30, 65504.0, 3.0, -0.0][b]),
    ));
    rows.push((
        "alternating".into(),
        by_block(|b, j| {
            let a = [1.0, 0.3, 1e-2, 1e3, 12345.0, 0.5, 2.0, 1e-6][b];
            if j % 2 == 0 {
                a
            } else {
                -a
            }
        }),
    ));
    rows.push((
        "signed zeros".into(),
        by_block(|b, j| match b {
            0 => -0.0,
            1 if j % 2 == 0 => -0.0,
            1 => 0.0,
            2 if j == 0 => 0.0,
            2 => -0.0,
            _ => 0.0,
        }),
    ));
    rows
}
