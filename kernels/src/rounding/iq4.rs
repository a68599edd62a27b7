//! The search of IQ4_NL and IQ4_XS (ggml's `quantize_row_iq4_nl_impl`, as `ggml_quantize_chunk`
//! runs it: 7 tries each side): per group of 32, the scale whose table levels fit the group
//! best in weighted least squares. The first fit maps the signed extreme to +127-ish (the top
//! level, 113); the 15 tries map it to −120..−134 instead, so a group may end with a scale of
//! either sign, using whichever end of the asymmetric table fits it better.

use super::{inverse_or_zero, signed_absmax, sum_squares, GROUP_MAX_EPS};
use crate::blocks::iq4::KVALUES;
use crate::blocks::legacy::QK;

/// The index of the table level nearest `x`, a midpoint going to the upper one; NaN gives 15,
/// as ggml's binary search (`best_index_int8`) does.
#[inline]
pub(crate) fn best_index(x: f32) -> u8 {
    let level = |i: usize| f32::from(KVALUES[i]);
    if x <= level(0) {
        return 0;
    }
    if x >= level(15) {
        return 15;
    }
    let (mut lo, mut hi) = (0, 15);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if x < level(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    if x - level(hi - 1) < level(hi) - x {
        (hi - 1) as u8
    } else {
        hi as u8
    }
}

/// The indices of `x` at inverse scale `inv`.
pub(crate) fn indices(x: &[f32], inv: f32, out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = best_index(inv * v);
    }
}

/// The scale of each group of 32 in `x` (one group for IQ4_NL, eight for IQ4_XS' super-block),
/// 0 for an all-zero group. Weights are `x²`, or with importance `qw·sqrt(sigma2 + x²)` with
/// sigma2 = 2·mean(x²) over all of `x`.
pub(crate) fn group_scales(x: &[f32], importance: Option<&[f32]>, scales: &mut [f32]) {
    // Summed serially then scaled by 2/len (a power of two, exact), as ggml does.
    let sigma2 = sum_squares(x) * (2.0 / x.len() as f32);
    for (g, scale) in scales.iter_mut().enumerate() {
        let xb = &x[g * QK..(g + 1) * QK];
        let w: [f32; QK] = std::array::from_fn(|j| match importance {
            Some(qw) => qw[g * QK + j] * (sigma2 + xb[j] * xb[j]).sqrt(),
            None => xb[j] * xb[j],
        });
        *scale = search(xb, &w);
    }
}

/// One group's best scale.
fn search(x: &[f32], w: &[f32; QK]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    // ggml writes this as (−max)/(−127): the same f32.
    let (sumqx, sumq2) = fit(x, w, 1.0 / (max / 127.0));
    let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -7..=7 {
        let (sumqx, sumq2) = fit(x, w, (itry - 127) as f32 / max);
        // Comparing sumqx²/sumq2 without dividing; strict, so the first of equals stays.
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// Σ w·q·x and Σ w·q² over the group for the levels q at inverse scale `inv`, in ggml's order.
fn fit(x: &[f32], w: &[f32; QK], inv: f32) -> (f32, f32) {
    x.iter()
        .zip(w)
        .fold((0.0, 0.0), |(sumqx, sumq2), (&x, &w)| {
            let q = f32::from(KVALUES[usize::from(best_index(inv * x))]);
            (sumqx + w * q * x, sumq2 + w * q * q)
        })
}

/// IQ4_XS' super-block scale from its groups': the largest in magnitude (the first of equals)
/// becomes sub-scale −32, so `d = −max/32` (−0.0 when every group is zero, as in ggml).
pub(crate) fn super_scale(scales: &[f32]) -> f32 {
    let (max, _) = signed_absmax(scales);
    -max / 32.0
}

/// The 6-bit sub-scale (−32..=31) of a group's scale under super-block scale `d` (unrounded, as
/// ggml uses it), and the inverse of the scale it stands for.
pub(crate) fn sub_scale(d: f32, scale: f32) -> (i32, f32) {
    let l = super::nearest_int(inverse_or_zero(d) * scale).clamp(-32, 31);
    (l, inverse_or_zero(d * l as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_index_is_the_nearest_level_with_midpoints_up() {
        for (i, &v) in KVALUES.iter().enumerate() {
            assert_eq!(best_index(f32::from(v)), i as u8);
        }
        // Between -10 (7) and 1 (8): the midpoint -4.5 goes up, just below it stays down.
        assert_eq!(best_index(-4.5), 8);
        assert_eq!(best_index((-4.5f32).next_down()), 7);
        assert_eq!(best_index(0.0), 8);
        assert_eq!(best_index(-1e9), 0);
        assert_eq!(best_index(1e9), 15);
        assert_eq!(best_index(f32::NAN), 15);
    }
}
