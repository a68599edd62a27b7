//! The rounding of the legacy 32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1): ggml's
//! reference rules (`quantize_row_*_ref`, what llama-quantize runs without an imatrix) and the
//! weighted search of the affine types (`make_qkx3_quants`). The symmetric types' weighted
//! search is the shared [`super::make_qx_quants`].
//!
//! Every step is done in f32 in ggml's order, and the reciprocal of the scale is taken once and
//! multiplied, as ggml does.

use super::{inverse_or_zero, nearest_int, signed_absmax};
use crate::blocks::legacy::{Block, Levels, QK};

/// C's float-to-integer conversion as compiled for x86 (`cvttss2si`), which ggml and numpy both
/// use: truncation, and the "integer indefinite" `i32::MIN` for NaN and out-of-range values. That
/// case is real: a block whose largest |x| is below ~1e-37 has a subnormal scale whose f32
/// reciprocal is infinite, so `x * id` is ±inf or NaN, and every level's low byte becomes 0.
/// Rust's saturating `as` would map +inf to 255 instead.
#[inline]
pub(crate) fn c_trunc(v: f32) -> i32 {
    if v.abs() < 2_147_483_648.0 {
        v as i32
    } else {
        i32::MIN
    }
}

/// `c_trunc(roundf(v))`: C's `roundf` (halves away from zero), then [`c_trunc`]. Computed from
/// the truncation and the exact fractional part `v - trunc(v)` rather than through a libm call,
/// which made `roundf` the hottest line of activation quantization.
#[inline]
pub(crate) fn c_round(v: f32) -> i32 {
    let t = v as i32;
    // Exact: v and its truncation share their leading bits (and t == v when |v| >= 2^23).
    let frac = v - t as f32;
    // Branch-free (the halves are data, unpredictable) so that it vectorizes.
    let r = t
        .wrapping_add(i32::from(frac >= 0.5))
        .wrapping_sub(i32::from(frac <= -0.5));
    if v.abs() < 2_147_483_648.0 {
        r
    } else {
        i32::MIN
    }
}

/// Reference rounding of the symmetric types (Q4_0: `nmax` 8, Q5_0: 16). The scale maps the
/// signed absmax to level 0, i.e. to -nmax: the extra negative level is spent on the largest
/// element. Levels are `x/d + nmax` rounded by truncating `x*id + nmax + 0.5`, which is what ggml
/// does (ties round up, not away from zero). An all-zero block gives d = 0/-nmax = -0.0: ggml
/// stores a zero block's d as 0x8000.
#[inline]
pub(crate) fn symmetric_ref(x: &Block, nmax: i32) -> (f32, Levels) {
    let d = signed_absmax(x).0 / -(nmax as f32);
    let id = inverse_or_zero(d);
    let bias = nmax as f32 + 0.5;
    let top = 2 * nmax - 1;
    let levels = std::array::from_fn(|j| c_trunc(x[j] * id + bias).clamp(0, top) as u8);
    (d, levels)
}

/// Reference rounding of the affine types (Q4_1: `nmax` 15, Q5_1: 31): the block's min and max
/// span the levels 0..=nmax. Returns (d, min, levels).
#[inline]
pub(crate) fn affine_ref(x: &Block, nmax: i32) -> (f32, f32, Levels) {
    // Strict comparisons from ±f32::MAX, as ggml: the first of equal values (0.0 vs -0.0) stays.
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / nmax as f32;
    let id = inverse_or_zero(d);
    let levels = std::array::from_fn(|j| c_trunc((x[j] - min) * id + 0.5).clamp(0, nmax) as u8);
    (d, min, levels)
}

/// Reference 8-bit rounding of Q8_0 and Q8_1: d = amax/127, q = round(x/d) with ties away from
/// zero (C's `roundf`), computed as `x * (1/d)`. Returns (d, q).
#[inline]
pub(crate) fn round_q8(x: &Block) -> (f32, [i8; QK]) {
    // ggml's MAX macro, whose NaN handling differs from `signed_absmax`'s.
    let amax = x
        .iter()
        .fold(0f32, |m, v| if m > v.abs() { m } else { v.abs() });
    let d = amax / 127.0;
    let id = inverse_or_zero(d);
    (d, std::array::from_fn(|j| c_round(x[j] * id) as i8))
}

/// Weighted least-squares scale and offset of an affine block (Q4_1: `nmax` 15, Q5_1: 31), with
/// the offset (the block min) kept <= 0: ggml's `make_qkx3_quants` with importance. Starts from
/// the plain min/max grid, then tries the 37 inverse scales `(nmax - 0.9 + k/20) / (max - min)`,
/// k = 0..36, fitting d and min jointly for each; keeps the fit with the smallest weighted
/// squared error. Note that a better fit replaces `min` and later candidates are gridded against
/// it, as in ggml. Returns (d, min, levels).
///
/// Not the K-quants' [`super::kquant::make_qkx_quants`]: the candidates' levels are clamped
/// before rounding here, which matters once `min` has moved.
pub(crate) fn affine_search(x: &Block, w: &Block, nmax: i32) -> (f32, f32, Levels) {
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
    fn c_round_is_roundf_then_c_trunc() {
        let mut v = vec![
            0.5f32,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999997,
            -0.49999997,
            8388607.5,
            -8388607.5,
            8388609.0,
            127.5,
            -127.5,
            2_147_483_520.0,
            -2_147_483_648.0,
            2_147_483_648.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.0,
            -0.0,
            1e-45,
        ];
        let mut x = 0x1234_5678u32;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let f = f32::from_bits(x);
            if f.is_finite() && f.abs() < 1e10 {
                v.push(f);
            }
            v.push((x % 100_000) as f32 / 64.0 - 780.0);
        }
        for v in v {
            assert_eq!(c_round(v), c_trunc(v.round()), "{v:e}");
        }
    }

    #[test]
    fn c_trunc_matches_x86_conversion() {
        assert_eq!(c_trunc(15.99), 15);
        assert_eq!(c_trunc(-0.7), 0);
        assert_eq!(c_trunc(f32::INFINITY) as u8, 0);
        assert_eq!(c_trunc(f32::NEG_INFINITY) as u8, 0);
        assert_eq!(c_trunc(f32::NAN) as u8, 0);
    }

    #[test]
    fn q8_ties_round_away_from_zero() {
        // amax 127 makes d = 1 exactly, so x/d = 2.5 must give 3 and -2.5 give -3.
        let mut x = [0f32; QK];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        let (d, q) = round_q8(&x);
        assert_eq!((d, q[0], q[1], q[2]), (1.0, 127, 3, -3));
    }

    #[test]
    fn affine_search_fits_an_exact_grid() {
        // Values already on a grid of step 0.5 from -4 to 3.5: zero error with uniform weights.
        let x: Block = std::array::from_fn(|j| (j as f32 % 16.0 - 8.0) * 0.5);
        let (d, m, levels) = affine_search(&x, &[1.0; QK], 15);
        for (v, l) in x.iter().zip(levels) {
            assert!((f32::from(l) * d + m - v).abs() < 1e-6, "{d} {m} {l} {v}");
        }
    }
}
