//! How the quantizers choose levels and scales: ggml's rounding rules and weighted searches,
//! reproduced bit for bit (every sum in f32 in ggml's order, no fused multiply-add; reordering
//! any of it, or doing it in f64, changes output bytes), and llq's own unbiased mode.
//!
//! What the type families share is here; [`legacy`] holds the rules of the 32-element types,
//! [`kquant`] the searches of the K-quants, [`iq4`] the table search of IQ4_NL and IQ4_XS,
//! [`unbiased`] the `--quant-mode unbiased` rescaling.

pub(crate) mod iq4;
pub(crate) mod kquant;
pub(crate) mod lanes;
pub(crate) mod legacy;
pub(crate) mod unbiased;

/// Groups whose largest magnitude is below this are treated as all zero (ggml's
/// `GROUP_MAX_EPS`).
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// Round half to even, by ggml's `nearest_int` trick: adding 1.5·2^23 leaves the rounded
/// integer in the low mantissa bits. Exact for |x| < 2^22; larger inputs give the same garbage
/// ggml gets, so that degenerate inputs still give ggml's bytes.
#[inline]
pub(crate) fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// ggml's `id = d ? 1/d : 0`: a zero group quantizes to its zero level instead of 0/0.
#[inline]
pub(crate) fn inverse_or_zero(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Left-to-right f32 sum starting from +0, as ggml's loops accumulate.
#[inline]
pub(crate) fn sum(xs: &[f32]) -> f32 {
    xs.iter().fold(0.0, |acc, &v| acc + v)
}

/// Left-to-right f32 sum of squares.
#[inline]
pub(crate) fn sum_squares(xs: &[f32]) -> f32 {
    xs.iter().fold(0.0, |acc, &v| acc + v * v)
}

/// The value of largest magnitude, with its sign, and that magnitude. The first one wins a tie
/// (ggml compares with a strict `<`), so `[-3, 3]` gives -3 and `[3, -3]` gives 3; all zeros
/// give (+0, +0).
#[inline]
pub(crate) fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

/// Symmetric levels in `-nmax..nmax` (stored with `+nmax`) and their scale, as ggml's
/// `make_qx_quants` with `rmse_type = 1` (Q4_0 and Q5_0 with importance, Q3_K, Q6_K): start
/// from the level set that maps the largest magnitude to `-nmax`, then try 18 nearby inverse
/// scales `-(nmax + k/10) / max` and keep the one with the best weighted least-squares fit
/// (maximising `sumlx² / suml2`). Weights default to `x²`. At most 32 values. An all-zero group
/// gives scale 0 with all levels 0 (not the zero point).
pub(crate) fn make_qx_quants(
    nmax: i32,
    x: &[f32],
    weights: Option<&[f32]>,
    levels: &mut [u8],
) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let n = x.len();
    let mut w = [0f32; 32];
    let w = &mut w[..n];
    match weights {
        Some(weights) => w.copy_from_slice(weights),
        None => {
            for (w, &v) in w.iter_mut().zip(x) {
                *w = v * v;
            }
        }
    }
    // Levels for one inverse scale, with the weighted sums of x·l and l² they give.
    let fit = |iscale: f32, levels: &mut [u8]| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for ((q, &v), &w) in levels.iter_mut().zip(x).zip(w.iter()) {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            *q = (l + nmax) as u8;
            let l = l as f32;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };

    let nmax_f = nmax as f32;
    let (sumlx, suml2) = fit(-nmax_f / max, levels);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    let mut candidate = [0u8; 32];
    let candidate = &mut candidate[..n];
    for is in (-9..=9).filter(|&is| is != 0) {
        let (sumlx, suml2) = fit(-(nmax_f + 0.1 * is as f32) / max, candidate);
        // Compare sumlx²/suml2 (the error reduction) without dividing.
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            levels.copy_from_slice(candidate);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        let cases = [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (3.5, 4),
            (-0.5, 0),
            (-1.5, -2),
            (-2.5, -2),
            (3.49, 3),
            (-7.6, -8),
            (-7.7, -8),
        ];
        for (x, want) in cases {
            assert_eq!(nearest_int(x), want, "{x}");
        }
    }

    #[test]
    fn first_of_equal_magnitudes_wins() {
        let mut x = [0f32; 32];
        assert_eq!(signed_absmax(&x), (0.0, 0.0));
        x[3] = -2.0;
        x[9] = 2.0;
        assert_eq!(signed_absmax(&x), (-2.0, 2.0));
        x[3] = 2.0;
        x[9] = -2.0;
        assert_eq!(signed_absmax(&x), (2.0, 2.0));
    }

    #[test]
    fn uniform_weights_fit_an_exact_grid() {
        // Values already on a grid of step 0.5 from -4 to 3.5: the search must find d = -0.5 or
        // an equivalent fit with zero error.
        let x: [f32; 32] = std::array::from_fn(|j| (j as f32 % 16.0 - 8.0) * 0.5);
        let mut levels = [0u8; 32];
        let d = make_qx_quants(8, &x, Some(&[1.0; 32]), &mut levels);
        for (v, l) in x.iter().zip(levels) {
            assert_eq!((f32::from(l) - 8.0) * d, *v);
        }
    }
}
