//! Property test without an oracle: for the legacy types, quantize → dequantize keeps every
//! element within a per-block bound derived from the format (half a quantization step, or a
//! whole step where the format clamps the far end), on random data of many scales and shapes.

use super::types;
use llq_kernels::{dequantize_row, quantize_row};
use llq_testsupport::Rng;
use llq_types::GgmlType;

/// Largest |x - y| allowed, as a fraction of the block's largest magnitude.
fn step_fraction(ty: GgmlType) -> f32 {
    match ty {
        // d = amax/127, error ≤ d/2.
        GgmlType::Q8_0 => 0.5 / 127.0,
        // d = max/-8; the opposite end clamps from 16 to 15: error ≤ d = amax/8.
        GgmlType::Q4_0 => 1.0 / 8.0,
        // d = (max - min)/15 ≤ 2·amax/15, error ≤ d/2.
        GgmlType::Q4_1 => 1.0 / 15.0,
        // d = max/-16, clamped end: error ≤ d.
        GgmlType::Q5_0 => 1.0 / 16.0,
        // d = (max - min)/31, error ≤ d/2.
        GgmlType::Q5_1 => 1.0 / 31.0,
        _ => unreachable!("{ty}: no error bound"),
    }
}

#[test]
fn legacy_types_stay_within_a_quantization_step() {
    let mut rng = Rng::new(0x1e6a_c7e5_0000_0001);
    // Uniform in [-1, 1).
    let unit = |rng: &mut Rng| rng.uniform() as f32 * 2.0 - 1.0;
    for case in 0..400 {
        let blocks = 1 + (rng.next_u64() % 8) as usize;
        // 1e-2 … 1e4: the fp16 scales stay normal (below, their subnormal rounding dominates).
        let scale = 10f32.powi((rng.next_u64() % 7) as i32 - 2);
        let skew = unit(&mut rng); // shifts the data off zero for the asymmetric types
        let x: Vec<f32> = (0..blocks * 32)
            .map(|i| match rng.next_u64() % 16 {
                0 => 0.0,
                1 => scale * if i % 2 == 0 { 1.0 } else { -1.0 },
                _ => scale * (unit(&mut rng) + skew * 0.5),
            })
            .collect();
        for ty in types() {
            let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
            quantize_row(ty, &x, &mut q, None);
            let mut y = vec![0f32; x.len()];
            dequantize_row(ty, &q, &mut y);
            for (b, (xb, yb)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
                let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
                // The fp16 scale (and min) round by up to 2^-11 relative: a little slack.
                let bound = amax * (step_fraction(ty) * 1.01 + 2e-3) + 1e-30;
                for (i, (a, b2)) in xb.iter().zip(yb).enumerate() {
                    assert!(
                        (a - b2).abs() <= bound,
                        "case {case} {ty} block {b} element {i}: {a} -> {b2} (bound {bound})"
                    );
                }
            }
        }
    }
}
