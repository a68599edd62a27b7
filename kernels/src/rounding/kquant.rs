//! The scale searches of the K-quants: given a small group of values (and per-value weights)
//! find a scale (and min) and integer levels minimizing weighted error, then requantize against
//! the scales as stored. They follow ggml step for step.

use super::{nearest_int, signed_absmax, GROUP_MAX_EPS};

/// Q3_K's symmetric search (`make_q3_quants` with `do_rmse`): levels in `-nmax..nmax` (stored
/// with `+nmax`), weights `x²`, refined by up to five passes that move one level at a time
/// whenever that improves the least-squares fit.
pub(crate) fn make_q3_quants(nmax: i32, x: &[f32; 16], levels: &mut [u8; 16]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut l = [0i32; 16];
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (li, &v) in l.iter_mut().zip(x) {
        *li = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        let w = v * v;
        sumlx += w * v * *li as f32;
        suml2 += w * *li as f32 * *li as f32;
    }
    for _ in 0..5 {
        let mut changed = false;
        for (li, &v) in l.iter_mut().zip(x) {
            let w = v * v;
            let mut slx = sumlx - w * v * *li as f32;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * *li as f32 * *li as f32;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != *li {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    for (q, &li) in levels.iter_mut().zip(&l) {
        *q = (li + nmax) as u8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// The inverse-scale sweep of an asymmetric search: candidates are
/// `(rmin + rdelta·k + nmax) / (max − min)` for `k = 0..=nstep`; `mad` picks absolute instead of
/// squared error.
pub(crate) struct QkxParams {
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
    pub mad: bool,
}

/// The sweep ggml uses for every K-quant when an importance matrix is given.
pub(crate) const IMATRIX_SEARCH: QkxParams = QkxParams {
    rmin: -0.9,
    rdelta: 0.05,
    nstep: 36,
    mad: false,
};

/// Asymmetric levels `0..=nmax` with `x ≈ scale·l − min` (`min ≥ 0`), as ggml's
/// `make_qkx2_quants` (and `make_qkx3_quants`, which is the same search when weights are given):
/// for each candidate inverse scale, quantize, solve the weighted least squares for scale and
/// min, and keep the best. Later candidates are taken relative to the best min so far, as in
/// ggml. Returns `(scale, min)`. At most 32 values.
pub(crate) fn make_qkx_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    levels: &mut [u8],
    p: &QkxParams,
) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for (&v, &w) in x.iter().zip(weights).skip(1) {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum_w += w;
        sum_x += w * v;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels.fill(0);
        return (0.0, -min);
    }
    let nmax_f = nmax as f32;
    let error = |scale: f32, min: f32, levels: &[u8]| {
        let mut err = 0.0f32;
        for ((&l, &v), &w) in levels.iter().zip(x).zip(weights) {
            let diff = scale * l as f32 + min - v;
            err += w * if p.mad { diff.abs() } else { diff * diff };
        }
        err
    };
    let iscale = nmax_f / (max - min);
    let mut scale = 1.0 / iscale;
    for (q, &v) in levels.iter_mut().zip(x) {
        *q = nearest_int(iscale * (v - min)).clamp(0, nmax) as u8;
    }
    let mut best_error = error(scale, min, levels);
    let mut aux = [0u8; 32];
    let aux = &mut aux[..n];
    for is in 0..=p.nstep {
        let iscale = (p.rmin + p.rdelta * is as f32 + nmax_f) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((q, &v), &w) in aux.iter_mut().zip(x).zip(weights) {
            *q = nearest_int(iscale * (v - min)).clamp(0, nmax) as u8;
            let l = *q as f32;
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * v;
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            // The offset may only subtract: refit the scale alone with min = 0.
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let cur_error = error(this_scale, this_min, aux);
            if cur_error < best_error {
                levels.copy_from_slice(aux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Quantize non-negative sub-block scales (or mins) to `0..=nmax` against one super-block scale,
/// as ggml's `make_qp_quants`: try nine inverse scales by weighted squared error, then refine
/// levels one at a time. Returns the super-block scale.
pub(crate) fn make_qp_quants(nmax: i32, x: &[f32], levels: &mut [u8], weights: &[f32]) -> f32 {
    // ggml's MAX macro: a NaN in x is kept only when it comes after every other value.
    let max = x.iter().fold(0.0f32, |m, &v| if m > v { m } else { v });
    if max < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let nmax_f = nmax as f32;
    let weighted_mse = |scale: f32, level: &dyn Fn(usize, f32) -> f32| {
        let mut mse = 0.0f32;
        for (i, (&v, &w)) in x.iter().zip(weights).enumerate() {
            let diff = v - scale * level(i, v);
            mse += w * diff * diff;
        }
        mse
    };

    let mut iscale = nmax_f / max;
    // The first candidate's error uses the unclamped levels as stored in bytes (ggml's u8 array).
    for (q, &v) in levels.iter_mut().zip(x) {
        *q = nearest_int(iscale * v) as u8;
    }
    let mut best_mse = weighted_mse(1.0 / iscale, &|i, _| levels[i] as f32);
    for is in (-4..=4).filter(|&is| is != 0) {
        let iscale_is = (0.1 * is as f32 + nmax_f) / max;
        let mse = weighted_mse(1.0 / iscale_is, &|_, v| {
            nearest_int(iscale_is * v).min(nmax) as f32
        });
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }

    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for ((q, &v), &w) in levels.iter_mut().zip(x).zip(weights) {
        let l = nearest_int(iscale * v).min(nmax);
        *q = l as u8;
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut changed = false;
        for ((q, &v), &w) in levels.iter_mut().zip(x).zip(weights) {
            let old = *q as f32;
            let mut slx = sumlx - w * v * old;
            let mut sl2 = suml2 - w * old * old;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(v * sl2 / slx).min(nmax);
                if new_l != i32::from(*q) {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *q = new_l as u8;
                        sumlx = slx;
                        suml2 = sl2;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Levels `0..=nmax` of `x ≈ d·l − dm` for a stored sub-block scale `d` and min `dm`.
pub(crate) fn requantize_affine(x: &[f32], d: f32, dm: f32, nmax: i32, levels: &mut [u8]) {
    for (q, &v) in levels.iter_mut().zip(x) {
        *q = nearest_int((v + dm) / d).clamp(0, nmax) as u8;
    }
}

/// Levels `-nmax..nmax` (stored with `+nmax`) of `x ≈ d·l` for a stored sub-block scale `d`.
pub(crate) fn requantize_symmetric(x: &[f32], d: f32, nmax: i32, levels: &mut [u8]) {
    for (q, &v) in levels.iter_mut().zip(x) {
        *q = (nearest_int(v / d).clamp(-nmax, nmax - 1) + nmax) as u8;
    }
}
