//! The importance-weighted scale searches ggml runs when an imatrix is given (`make_qx_quants`
//! for the symmetric types, `make_qkx3_quants` for the affine ones). They minimise
//! `sum w_j (x_j - q_j d)^2` over a few candidate scales and keep the best. Everything is f32 in
//! ggml's operation order, so the chosen levels and scale match ggml's bit for bit.

use super::{Block, Levels, QK};

/// ggml's `nearest_int`: add 1.5 * 2^23 so the FPU rounds to an integer (ties to even) in the low
/// mantissa bits, then read them back. Reproduced bit for bit, including its garbage outside
/// |v| <= 2^22, so that degenerate inputs still give ggml's bytes.
#[inline]
pub(super) fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12_582_912.0).to_bits() as i32;
    (bits & 0x007F_FFFF) - 0x0040_0000
}

/// Below this largest |x| a block counts as zero (ggml's GROUP_MAX_EPS).
const ZERO_EPS: f32 = 1e-15;

/// Weighted least-squares scale of a symmetric block (Q4_0: `nmax` 8, Q5_0: 16); levels are
/// `nmax + round(x/d)` clamped to 0..2*nmax. Tries the 19 inverse scales `-(nmax + k/10) / max`,
/// k = -9..9, and refits d in closed form for each; keeps the one maximising `sumlx^2 / suml2`.
/// An all-zero block gives d = 0 with all levels 0 (not the zero point, unlike the reference).
pub(super) fn symmetric_search(x: &Block, w: &Block, nmax: i32) -> (f32, Levels) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < ZERO_EPS {
        return (0.0, [0; QK]);
    }
    let level = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    // (sum w x l, sum w l^2) for one inverse scale, in ggml's association order.
    let sums = |iscale: f32| {
        x.iter().zip(w).fold((0f32, 0f32), |(slx, sl2), (&v, &wi)| {
            let l = level(iscale, v) as f32;
            (slx + wi * v * l, sl2 + wi * l * l)
        })
    };
    let levels_for =
        |iscale: f32| -> Levels { std::array::from_fn(|j| (level(iscale, x[j]) + nmax) as u8) };

    let iscale = -(nmax as f32) / max;
    let (sumlx, suml2) = sums(iscale);
    let mut levels = levels_for(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for k in (-9..=9).filter(|&k| k != 0) {
        let iscale = -(nmax as f32 + 0.1 * k as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            levels = levels_for(iscale);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    (scale, levels)
}

/// `--quant-mode unbiased` only (not ggml): improve the levels of a symmetric block found by
/// [`symmetric_search`] by coordinate descent on the same objective, the weighted error after
/// the least-squares scale, i.e. maximise `(sum w x l)^2 / sum w l^2`: move one level at a time
/// by ±1 (within `-nmax..nmax-1`) while that helps, for at most 8 sweeps. Sums in f64. Returns
/// the least-squares scale of the final levels (`scale` unchanged for an all-zero block).
pub(super) fn refine_symmetric(
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

/// Weighted least-squares scale and offset of an affine block (Q4_1: `nmax` 15, Q5_1: 31), with
/// the offset (the block min) kept <= 0. Starts from the plain min/max grid, then tries the 37
/// inverse scales `(nmax - 0.9 + k/20) / (max - min)`, k = 0..36, fitting d and min jointly for
/// each; keeps the fit with the smallest weighted squared error. Note that a better fit replaces
/// `min` and later candidates are gridded against it, as in ggml. Returns (d, min, levels).
pub(super) fn affine_search(x: &Block, w: &Block, nmax: i32) -> (f32, f32, Levels) {
    const RMIN: f32 = -0.9;
    const RDELTA: f32 = 0.05;
    const NSTEP: i32 = 36;

    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for (&v, &wi) in x.iter().zip(w).skip(1) {
        min = if v < min { v } else { min };
        max = if v > max { v } else { max };
        sum_w += wi;
        sum_x += wi * v;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max <= min {
        return (0.0, min, [0; QK]);
    }
    let nmax_f = nmax as f32;
    let error = |scale: f32, min: f32, levels: &Levels| {
        x.iter()
            .zip(w)
            .zip(levels)
            .fold(0f32, |e, ((&v, &wi), &l)| {
                let diff = scale * f32::from(l) + min - v;
                e + wi * (diff * diff)
            })
    };

    let iscale = nmax_f / (max - min);
    let mut scale = 1.0 / iscale;
    let mut levels: Levels =
        std::array::from_fn(|j| nearest_int(iscale * (x[j] - min)).clamp(0, nmax) as u8);
    let mut best = error(scale, min, &levels);

    for step in 0..=NSTEP {
        let iscale = (RMIN + RDELTA * step as f32 + nmax_f) / (max - min);
        let trial: Levels = std::array::from_fn(|j| {
            // Clamp before rounding: once `min` has moved, v can be huge, inf or NaN.
            let v = iscale * (x[j] - min);
            if v > 0.0 {
                nearest_int(v.min(nmax_f)) as u8
            } else {
                0
            }
        });
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for ((&v, &wi), &l) in x.iter().zip(w).zip(&trial) {
            let l = f32::from(l);
            sum_l += wi * l;
            sum_l2 += wi * l * l;
            sum_xl += wi * l * v;
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let err = error(this_scale, this_min, &trial);
            if err < best {
                levels = trial;
                best = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, min, levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_ties_to_even() {
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(3.5), 4);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(-7.6), -8);
    }

    #[test]
    fn refinement_never_worsens_the_weighted_fit() {
        use crate::quant::test_util::normal_row;
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
            let x: Block = normal_row(seed, QK, 1.0).try_into().unwrap();
            let w: Block = normal_row(seed + 1000, QK, 1.0)
                .iter()
                .map(|v| v * v)
                .collect::<Vec<_>>()
                .try_into()
                .unwrap();
            let (d, mut levels) = symmetric_search(&x, &w, 8);
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

    #[test]
    fn uniform_weights_fit_an_exact_grid() {
        // Values already on a grid of step 0.5 from -4 to 3.5: the search must find d = -0.5 or
        // an equivalent fit with zero error.
        let x: Block = std::array::from_fn(|j| (j as f32 % 16.0 - 8.0) * 0.5);
        let (d, levels) = symmetric_search(&x, &[1.0; QK], 8);
        for (v, l) in x.iter().zip(levels) {
            assert_eq!((f32::from(l) - 8.0) * d, *v);
        }
        let (d, m, levels) = affine_search(&x, &[1.0; QK], 15);
        for (v, l) in x.iter().zip(levels) {
            assert!((f32::from(l) * d + m - v).abs() < 1e-6, "{d} {m} {l} {v}");
        }
    }
}
