//! `--quant-mode unbiased` ([`QuantMode::Unbiased`]): ggml's block layouts, with each block's
//! reconstruction freed of gain error. Not ggml: llq's own rounding mode.

use crate::blocks::legacy::{Block, Levels};
use crate::blocks::{dequantize_row, quantize_row, traits};
use crate::float;
use llq_types::GgmlType;

/// How importance weights (an imatrix) steer the rounding. Without importance both modes give
/// ggml's reference bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuantMode {
    /// ggml's weighted searches, byte for byte (what llama-quantize writes).
    #[default]
    Ggml,
    /// Not ggml: the same block layouts, but each block's reconstruction is made free of gain
    /// error. ggml's least-squares scale projects a block onto its levels, so the decoded block
    /// is systematically smaller than the original (in the weighted norm); through q·k,
    /// gate·up and the residual stream these shrinks add up instead of averaging out. Here the
    /// levels are chosen as ggml chooses them (Q4_0 and Q5_0 then refine them by coordinate
    /// descent on the same weighted fit), and then every block's fp16 factors (d, and dmin or m
    /// for the affine types) are multiplied by `g = Σ w x² / Σ w x x̂`, so that
    /// `Σ w x x̂ = Σ w x²`: the error has no component along the block itself. `w` are the
    /// weights of ggml's legacy-type search, `importance · sqrt(σ² + x²)` with σ² the row's mean
    /// square. Types that ignore importance (Q8_0, floats) are unchanged.
    Unbiased,
}

/// Encode one row of `ty` with `importance` used as `mode` says; same contract as
/// [`quantize_row`], which this is for [`QuantMode::Ggml`] or without importance.
pub fn quantize_row_mode(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
    mode: QuantMode,
) {
    let (QuantMode::Unbiased, Some(importance)) = (mode, importance) else {
        return quantize_row(ty, src, dst, importance);
    };
    let t = traits(ty);
    if !t.uses_importance {
        return quantize_row(ty, src, dst, Some(importance));
    }
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    assert_eq!(importance.len(), src.len(), "{ty} importance length");
    (t.quantize_unbiased)(src, dst, importance);
    remove_gain(ty, t.factors, src, dst, importance);
}

/// Rescale each block's linear fp16 `factors` of an encoded row by `Σ w x² / Σ w x x̂` (see
/// [`QuantMode::Unbiased`]). Sums in f64; a block whose ratio is not finite and positive, or
/// whose rescaled factor would not be a finite fp16, is left as it is.
fn remove_gain(ty: GgmlType, factors: &[usize], src: &[f32], dst: &mut [u8], importance: &[f32]) {
    let mut decoded = vec![0f32; src.len()];
    dequantize_row(ty, dst, &mut decoded);
    let sigma2 = src
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        / src.len() as f64;
    let blocks = dst
        .chunks_exact_mut(ty.type_size())
        .zip(src.chunks_exact(ty.block_size()))
        .zip(decoded.chunks_exact(ty.block_size()))
        .zip(importance.chunks_exact(ty.block_size()));
    for (((out, x), y), imp) in blocks {
        let (mut xx, mut xy) = (0f64, 0f64);
        for ((&x, &y), &q) in x.iter().zip(y).zip(imp) {
            let (x, y) = (f64::from(x), f64::from(y));
            let w = f64::from(q) * (sigma2 + x * x).sqrt();
            xx += w * x * x;
            xy += w * x * y;
        }
        let g = xx / xy;
        if !(g.is_finite() && g > 0.0) {
            continue;
        }
        let scaled: Vec<u16> = factors
            .iter()
            .map(|&at| {
                let d = float::f16_bits_to_f32(u16::from_le_bytes([out[at], out[at + 1]]));
                float::f32_to_f16_bits((f64::from(d) * g) as f32)
            })
            .collect();
        if scaled
            .iter()
            .all(|&b| float::f16_bits_to_f32(b).is_finite())
        {
            for (&at, b) in factors.iter().zip(scaled) {
                out[at..at + 2].copy_from_slice(&b.to_le_bytes());
            }
        }
    }
}

/// `--quant-mode unbiased` only (not ggml): improve the levels of a symmetric block found by
/// [`super::make_qx_quants`] by coordinate descent on the same objective, the weighted error after
/// the least-squares scale, i.e. maximise `(sum w x l)^2 / sum w l^2`: move one level at a time
/// by ±1 (within `-nmax..nmax-1`) while that helps, for at most 8 sweeps. Sums in f64. Returns
/// the least-squares scale of the final levels (`scale` unchanged for an all-zero block).
pub(crate) fn refine_symmetric(
    x: &Block,
    w: &Block,
    nmax: i32,
    scale: f32,
    levels: &mut Levels,
) -> f32 {
    let (mut sumlx, mut suml2) = (0f64, 0f64);
    for ((&v, &wi), &q) in x.iter().zip(w).zip(levels.iter()) {
        let l = f64::from(i32::from(q) - nmax);
        sumlx += f64::from(wi) * f64::from(v) * l;
        suml2 += f64::from(wi) * l * l;
    }
    if sumlx == 0.0 || suml2 <= 0.0 {
        return scale;
    }
    for _ in 0..8 {
        let mut changed = false;
        for ((&v, &wi), q) in x.iter().zip(w).zip(levels.iter_mut()) {
            let l0 = i32::from(*q) - nmax;
            for l1 in [l0 - 1, l0 + 1] {
                if !(-nmax..nmax).contains(&l1) {
                    continue;
                }
                let (wi, v) = (f64::from(wi), f64::from(v));
                let lx = sumlx + wi * v * f64::from(l1 - l0);
                let l2 = suml2 + wi * f64::from(l1 * l1 - l0 * l0);
                // Same sign of sum w x l (the scale's sign) and a strictly better fit.
                if lx * sumlx > 0.0 && l2 > 0.0 && lx * lx * suml2 > sumlx * sumlx * l2 {
                    *q = (l1 + nmax) as u8;
                    (sumlx, suml2) = (lx, l2);
                    changed = true;
                    break;
                }
            }
        }
        if !changed {
            break;
        }
    }
    (sumlx / suml2) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::legacy::QK;
    use crate::rounding::make_qx_quants;
    use llq_testsupport::Rng;

    fn encode(ty: GgmlType, x: &[f32], imp: Option<&[f32]>, mode: QuantMode) -> Vec<u8> {
        let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
        quantize_row_mode(ty, x, &mut q, imp, mode);
        q
    }

    #[test]
    fn ggml_mode_and_no_importance_are_quantize_row() {
        let x = Rng::new(7).normals(512, 0.05);
        let imp: Vec<f32> = Rng::new(8)
            .normals(512, 1.0)
            .iter()
            .map(|v| v * v)
            .collect();
        for ty in GgmlType::all() {
            let mut want = vec![0u8; ty.row_bytes(x.len()).unwrap()];
            quantize_row(ty, &x, &mut want, Some(&imp));
            assert_eq!(encode(ty, &x, Some(&imp), QuantMode::Ggml), want, "{ty}");
            quantize_row(ty, &x, &mut want, None);
            assert_eq!(encode(ty, &x, None, QuantMode::Unbiased), want, "{ty}");
        }
    }

    #[test]
    fn unbiased_mode_removes_the_weighted_gain_error() {
        let x = Rng::new(11).normals(8192, 0.05);
        let imp: Vec<f32> = Rng::new(12)
            .normals(8192, 1.0)
            .iter()
            .map(|v| v * v)
            .collect();
        let sigma2 = x.iter().map(|&v| f64::from(v * v)).sum::<f64>() / x.len() as f64;
        // Σ w x (x − x̂) / Σ w x² over each block: the relative gain error.
        let gain_errors = |ty: GgmlType, q: &[u8]| -> Vec<f64> {
            let mut y = vec![0f32; x.len()];
            dequantize_row(ty, q, &mut y);
            let n = ty.block_size();
            (0..x.len() / n)
                .map(|b| {
                    let (mut xx, mut xe) = (0f64, 0f64);
                    for j in b * n..(b + 1) * n {
                        let w = f64::from(imp[j]) * (sigma2 + f64::from(x[j] * x[j])).sqrt();
                        xx += w * f64::from(x[j] * x[j]);
                        xe += w * f64::from(x[j]) * f64::from(x[j] - y[j]);
                    }
                    xe / xx
                })
                .collect()
        };
        for ty in GgmlType::all() {
            let ggml = gain_errors(ty, &encode(ty, &x, Some(&imp), QuantMode::Ggml));
            let unbiased = gain_errors(ty, &encode(ty, &x, Some(&imp), QuantMode::Unbiased));
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            if !traits(ty).uses_importance {
                assert_eq!(ggml, unbiased, "{ty} ignores importance");
                continue;
            }
            // fp16 rounding of the rescaled factors leaves up to ~2^-11 of gain error.
            for g in &unbiased {
                assert!(g.abs() < 1.5e-3, "{ty}: block gain error {g}");
            }
            assert!(
                mean(&ggml) > 0.0,
                "{ty}: ggml's fit shrinks ({})",
                mean(&ggml)
            );
        }
    }

    #[test]
    fn refinement_never_worsens_the_weighted_fit() {
        let err = |x: &Block, w: &Block, d: f32, l: &Levels| -> f64 {
            (0..QK)
                .map(|j| {
                    let e = f64::from(x[j]) - f64::from(d) * f64::from(i32::from(l[j]) - 8);
                    f64::from(w[j]) * e * e
                })
                .sum()
        };
        let mut improved = 0;
        for seed in 0..200 {
            let x: Block = Rng::new(seed).normals(QK, 1.0).try_into().unwrap();
            let w: Block = Rng::new(seed + 1000)
                .normals(QK, 1.0)
                .iter()
                .map(|v| v * v)
                .collect::<Vec<_>>()
                .try_into()
                .unwrap();
            let mut levels = [0u8; QK];
            let d = make_qx_quants(8, &x, Some(&w), &mut levels);
            let before = err(&x, &w, d, &levels);
            let d2 = refine_symmetric(&x, &w, 8, d, &mut levels);
            let after = err(&x, &w, d2, &levels);
            assert!(
                after <= before * (1.0 + 1e-6),
                "seed {seed}: {before} -> {after}"
            );
            assert!(levels.iter().all(|&l| l < 16));
            improved += usize::from(after < before * (1.0 - 1e-6));
        }
        assert!(
            improved > 20,
            "refinement improved only {improved} of 200 blocks"
        );
        // An all-zero block is left alone.
        let mut levels = [0; QK];
        assert_eq!(
            refine_symmetric(&[0.0; QK], &[1.0; QK], 8, 0.0, &mut levels),
            0.0
        );
        assert_eq!(levels, [0; QK]);
    }
}
