//! The K-quant searches of [`super::kquant`] and [`super::make_qx_quants`] run on `L` groups at
//! once: group `k` (a sub-block) lives in lane `k` of every array, element `i` of all groups in
//! row `i` (`[[f32; L]; N]`, the groups transposed). Each lane performs exactly the scalar
//! search's sequence of f32 operations (the same products in the same association, every sum
//! from the same start in element order, the same comparisons and selections) so each lane's
//! result is the scalar result bit for bit: IEEE arithmetic is lane-wise, and Rust never fuses
//! a multiply and an add. Where the scalar code branches, every lane computes both sides and
//! keeps its own; where it stops early (`make_q3_quants` once a pass changes nothing) the lanes
//! go on until all have stopped, which changes nothing for those that had.
//!
//! The code is plain arrays and loops over `0..L`: the compiler turns each loop into vector
//! instructions of whatever the enclosing function is compiled for. [`path`] picks, once per
//! process, AVX-512 or AVX2 entry points (`#[target_feature]` functions that instantiate an
//! encoder's batch code) or the baseline build of the same code; `LLQ_KERNELS=scalar` keeps the
//! scalar reference searches instead, one group at a time, as the portable path.
//!
//! A search's candidate levels are not kept: each lane remembers the inverse scale (and min)
//! its best levels came from, and the levels are recomputed from those at the end, which gives
//! the same integers as the scalar copy.

use super::kquant::QkxParams;
use super::{nearest_int, GROUP_MAX_EPS};
use std::sync::OnceLock;

/// How the K-quant encoders run their searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// The scalar searches, one group at a time (`LLQ_KERNELS=scalar`).
    Reference,
    /// The lane code as the baseline target compiles it.
    Lanes,
    /// The lane code compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// The lane code compiled for AVX-512 (F, BW, VL, DQ).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// Every path this CPU can run, the reference first (the tests compare them all).
pub(crate) fn paths() -> Vec<Path> {
    // Only x86_64 has more paths to add.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut p = vec![Path::Reference, Path::Lanes];
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") {
            p.push(Path::Avx2);
        }
        if avx512() {
            p.push(Path::Avx512);
        }
    }
    p
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512dq")
}

/// The path in use, chosen at first use: the reference when `LLQ_KERNELS=scalar` forced the
/// scalar kernels, AVX2 when it capped them at `avx2`, else the widest this CPU has.
pub(crate) fn path() -> Path {
    static P: OnceLock<Path> = OnceLock::new();
    *P.get_or_init(|| {
        let isa = crate::dot::active_isa();
        if isa == "scalar" {
            return Path::Reference;
        }
        let best = *paths().last().expect("the reference is always there");
        #[cfg(target_arch = "x86_64")]
        if isa == "avx2" && best == Path::Avx512 {
            return Path::Avx2;
        }
        best
    })
}

/// A row encoder whose searches run on lanes: [`Self::encode::<L>`] encodes a row with `L`
/// lanes, [`Self::reference`] with the scalar searches.
pub(crate) trait LaneEncoder {
    /// Encode a row (whole blocks) with `L`-lane searches. Must be `#[inline(always)]`, so that
    /// the target-feature entry points compile it, and everything it inlines, for their ISA.
    fn encode<const L: usize>(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>);
    /// Encode a row with the scalar reference searches.
    fn reference(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>);
}

/// Lanes of the vector paths: one AVX-512 register, two AVX2 ones (the second hides the
/// latency of the sums' dependency chains).
pub(crate) const LANES: usize = 16;

/// Encode a row with `E` on the [`path`] in use.
pub(crate) fn encode_row<E: LaneEncoder>(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
    encode_row_on::<E>(path(), src, dst, importance)
}

/// Encode a row with `E` on `path`, which this CPU must support (see [`paths`]).
pub(crate) fn encode_row_on<E: LaneEncoder>(
    path: Path,
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
) {
    match path {
        Path::Reference => E::reference(src, dst, importance),
        Path::Lanes => E::encode::<LANES>(src, dst, importance),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => {
            assert!(is_x86_feature_detected!("avx2"));
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { encode_avx2::<E>(src, dst, importance) }
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            assert!(avx512());
            // SAFETY: the CPU has AVX-512 F/BW/VL/DQ, checked just above.
            unsafe { encode_avx512::<E>(src, dst, importance) }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn encode_avx2<E: LaneEncoder>(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
    E::encode::<LANES>(src, dst, importance)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn encode_avx512<E: LaneEncoder>(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
    E::encode::<LANES>(src, dst, importance)
}

/// Groups of `N` values transposed into lanes: lane `k` holds group `k` of `src`, or the last
/// group when `src` has fewer than `L` (those lanes are computed and ignored).
#[inline(always)]
pub(crate) fn gather<const L: usize, const N: usize>(src: &[f32]) -> [[f32; L]; N] {
    let groups = src.len() / N;
    debug_assert!(groups >= 1 && groups * N == src.len());
    let mut t = [[0f32; L]; N];
    for k in 0..L {
        let g = &src[k.min(groups - 1) * N..][..N];
        for (row, &v) in t.iter_mut().zip(g) {
            row[k] = v;
        }
    }
    t
}

/// Lanes `first..` of `t` back as consecutive groups of `N`, as many as `dst` holds.
#[inline(always)]
pub(crate) fn scatter<const L: usize, const N: usize>(
    t: &[[u8; L]; N],
    first: usize,
    dst: &mut [u8],
) {
    for (k, g) in dst.chunks_exact_mut(N).enumerate() {
        for (q, row) in g.iter_mut().zip(t) {
            *q = row[first + k];
        }
    }
}

/// `f` of each lane.
#[inline(always)]
pub(crate) fn each<const L: usize, T>(f: impl FnMut(usize) -> T) -> [T; L] {
    std::array::from_fn(f)
}

/// Left-to-right sums of each lane's squares, from +0 (as [`super::sum_squares`]).
#[inline(always)]
pub(crate) fn sum_squares<const L: usize, const N: usize>(x: &[[f32; L]; N]) -> [f32; L] {
    let mut s = [0f32; L];
    for row in x {
        for k in 0..L {
            s[k] += row[k] * row[k];
        }
    }
    s
}

/// Left-to-right sums of each lane, from +0 (as [`super::sum`]).
#[inline(always)]
pub(crate) fn sum<const L: usize, const N: usize>(x: &[[f32; L]; N]) -> [f32; L] {
    let mut s = [0f32; L];
    for row in x {
        for k in 0..L {
            s[k] += row[k];
        }
    }
    s
}

/// [`super::signed_absmax`] of each lane.
#[inline(always)]
fn signed_absmax<const L: usize, const N: usize>(x: &[[f32; L]; N]) -> ([f32; L], [f32; L]) {
    let (mut max, mut amax) = ([0f32; L], [0f32; L]);
    for row in x {
        for k in 0..L {
            let a = row[k].abs();
            let bigger = a > amax[k];
            amax[k] = if bigger { a } else { amax[k] };
            max[k] = if bigger { row[k] } else { max[k] };
        }
    }
    (max, amax)
}

/// [`super::kquant::make_qkx_quants`] on each lane: levels into `levels`, returns
/// `(scale, min)`.
#[inline(always)]
pub(crate) fn make_qkx_quants<const L: usize, const N: usize>(
    nmax: i32,
    x: &[[f32; L]; N],
    weights: &[[f32; L]; N],
    levels: &mut [[u8; L]; N],
    p: &QkxParams,
) -> ([f32; L], [f32; L]) {
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x: [f32; L] = each(|k| sum_w[k] * x[0][k]);
    for (row, w) in x.iter().zip(weights).skip(1) {
        for k in 0..L {
            let v = row[k];
            min[k] = if v < min[k] { v } else { min[k] };
            max[k] = if v > max[k] { v } else { max[k] };
            sum_w[k] += w[k];
            sum_x[k] += w[k] * row[k];
        }
    }
    for m in &mut min {
        *m = if *m > 0.0 { 0.0 } else { *m };
    }
    // Lanes whose values are all equal: all-zero levels, scale 0, computed along and dropped.
    let flat: [bool; L] = each(|k| max[k] == min[k]);
    let first_min = min;
    let nmax_f = nmax as f32;

    let iscale: [f32; L] = each(|k| nmax_f / (max[k] - min[k]));
    let mut scale: [f32; L] = each(|k| 1.0 / iscale[k]);
    // The inverse scale and min the best levels so far come from.
    let (mut best_iscale, mut best_min) = (iscale, min);
    let mut aux = [[0f32; L]; N];
    quantize_affine(nmax, x, &iscale, &min, &mut aux);
    let mut best_error = error(p.mad, x, weights, &aux, &scale, &min);
    for is in 0..=p.nstep {
        let numerator = p.rmin + p.rdelta * is as f32 + nmax_f;
        let iscale: [f32; L] = each(|k| numerator / (max[k] - min[k]));
        quantize_affine(nmax, x, &iscale, &min, &mut aux);
        let (mut sum_l, mut sum_l2, mut sum_xl) = ([0f32; L], [0f32; L], [0f32; L]);
        for ((row, w), l) in x.iter().zip(weights).zip(&aux) {
            for k in 0..L {
                let wl = w[k] * l[k];
                sum_l[k] += wl;
                sum_l2[k] += wl * l[k];
                sum_xl[k] += wl * row[k];
            }
        }
        let mut this_scale = [0f32; L];
        let mut this_min = [0f32; L];
        let mut fit = [false; L];
        for k in 0..L {
            let det = sum_w[k] * sum_l2[k] - sum_l[k] * sum_l[k];
            fit[k] = det > 0.0;
            let s = (sum_w[k] * sum_xl[k] - sum_x[k] * sum_l[k]) / det;
            let m = (sum_l2[k] * sum_x[k] - sum_l[k] * sum_xl[k]) / det;
            // The offset may only subtract: refit the scale alone with min = 0.
            let refit = m > 0.0;
            this_min[k] = if refit { 0.0 } else { m };
            this_scale[k] = if refit { sum_xl[k] / sum_l2[k] } else { s };
        }
        if !fit.iter().any(|&f| f) {
            continue;
        }
        let cur_error = error(p.mad, x, weights, &aux, &this_scale, &this_min);
        for k in 0..L {
            let better = fit[k] && cur_error[k] < best_error[k];
            best_error[k] = if better { cur_error[k] } else { best_error[k] };
            scale[k] = if better { this_scale[k] } else { scale[k] };
            best_iscale[k] = if better { iscale[k] } else { best_iscale[k] };
            best_min[k] = if better { min[k] } else { best_min[k] };
            min[k] = if better { this_min[k] } else { min[k] };
        }
    }
    quantize_affine(nmax, x, &best_iscale, &best_min, &mut aux);
    for (q, l) in levels.iter_mut().zip(&aux) {
        for k in 0..L {
            q[k] = if flat[k] { 0 } else { l[k] as u8 };
        }
    }
    (
        each(|k| if flat[k] { 0.0 } else { scale[k] }),
        each(|k| if flat[k] { -first_min[k] } else { -min[k] }),
    )
}

/// `clamp(nearest_int(iscale·(x − min)), 0, nmax)` of each value, as f32.
#[inline(always)]
fn quantize_affine<const L: usize, const N: usize>(
    nmax: i32,
    x: &[[f32; L]; N],
    iscale: &[f32; L],
    min: &[f32; L],
    out: &mut [[f32; L]; N],
) {
    for (row, o) in x.iter().zip(out.iter_mut()) {
        for k in 0..L {
            o[k] = nearest_int(iscale[k] * (row[k] - min[k])).clamp(0, nmax) as f32;
        }
    }
}

/// Each lane's weighted error `Σ w·|scale·l + min − x|` (`mad`) or `Σ w·(scale·l + min − x)²`.
#[inline(always)]
fn error<const L: usize, const N: usize>(
    mad: bool,
    x: &[[f32; L]; N],
    weights: &[[f32; L]; N],
    levels: &[[f32; L]; N],
    scale: &[f32; L],
    min: &[f32; L],
) -> [f32; L] {
    let mut err = [0f32; L];
    let rows = x.iter().zip(weights).zip(levels);
    if mad {
        for ((row, w), l) in rows {
            for k in 0..L {
                let diff = scale[k] * l[k] + min[k] - row[k];
                err[k] += w[k] * diff.abs();
            }
        }
    } else {
        for ((row, w), l) in rows {
            for k in 0..L {
                let diff = scale[k] * l[k] + min[k] - row[k];
                err[k] += w[k] * (diff * diff);
            }
        }
    }
    err
}

/// [`super::make_qx_quants`] on each lane, with weights given (the scalar default `x²` is the
/// caller's to compute): levels into `levels`, returns the scales.
#[inline(always)]
pub(crate) fn make_qx_quants<const L: usize, const N: usize>(
    nmax: i32,
    x: &[[f32; L]; N],
    weights: &[[f32; L]; N],
    levels: &mut [[u8; L]; N],
) -> [f32; L] {
    let (max, amax) = signed_absmax(x);
    let zero: [bool; L] = each(|k| amax[k] < GROUP_MAX_EPS);
    // w·x of every value, the first factor of each sumlx term.
    let mut wx = [[0f32; L]; N];
    for ((o, row), w) in wx.iter_mut().zip(x).zip(weights) {
        for k in 0..L {
            o[k] = w[k] * row[k];
        }
    }
    let nmax_f = nmax as f32;
    let iscale: [f32; L] = each(|k| -nmax_f / max[k]);
    let (sumlx, suml2) = fit_symmetric(nmax, x, weights, &wx, &iscale);
    let mut scale: [f32; L] = each(|k| {
        if suml2[k] != 0.0 {
            sumlx[k] / suml2[k]
        } else {
            0.0
        }
    });
    let mut best: [f32; L] = each(|k| scale[k] * sumlx[k]);
    let mut best_iscale = iscale;
    for is in (-9..=9).filter(|&is| is != 0) {
        let numerator = -(nmax_f + 0.1 * is as f32);
        let iscale: [f32; L] = each(|k| numerator / max[k]);
        let (sumlx, suml2) = fit_symmetric(nmax, x, weights, &wx, &iscale);
        for k in 0..L {
            let better = suml2[k] > 0.0 && sumlx[k] * sumlx[k] > best[k] * suml2[k];
            let s = sumlx[k] / suml2[k];
            best_iscale[k] = if better { iscale[k] } else { best_iscale[k] };
            scale[k] = if better { s } else { scale[k] };
            best[k] = if better { s * sumlx[k] } else { best[k] };
        }
    }
    for (q, row) in levels.iter_mut().zip(x) {
        for k in 0..L {
            let l = nearest_int(best_iscale[k] * row[k]).clamp(-nmax, nmax - 1) + nmax;
            q[k] = if zero[k] { 0 } else { l as u8 };
        }
    }
    each(|k| if zero[k] { 0.0 } else { scale[k] })
}

/// The weighted sums of x·l and l² that the symmetric levels of inverse scale `iscale` give
/// (`wx` = w·x).
#[inline(always)]
fn fit_symmetric<const L: usize, const N: usize>(
    nmax: i32,
    x: &[[f32; L]; N],
    weights: &[[f32; L]; N],
    wx: &[[f32; L]; N],
    iscale: &[f32; L],
) -> ([f32; L], [f32; L]) {
    let (mut sumlx, mut suml2) = ([0f32; L], [0f32; L]);
    for ((row, w), wx) in x.iter().zip(weights).zip(wx) {
        for k in 0..L {
            let l = nearest_int(iscale[k] * row[k]).clamp(-nmax, nmax - 1) as f32;
            sumlx[k] += wx[k] * l;
            suml2[k] += w[k] * l * l;
        }
    }
    (sumlx, suml2)
}

/// [`super::kquant::make_q3_quants`] on each lane (16 values, weights `x²`): levels into
/// `levels`, returns the scales.
#[inline(always)]
pub(crate) fn make_q3_quants<const L: usize>(
    nmax: i32,
    x: &[[f32; L]; 16],
    levels: &mut [[u8; L]; 16],
) -> [f32; L] {
    let (max, amax) = signed_absmax(x);
    let zero: [bool; L] = each(|k| amax[k] < GROUP_MAX_EPS);
    let nmax_f = nmax as f32;
    let iscale: [f32; L] = each(|k| -nmax_f / max[k]);
    let mut l = [[0i32; L]; 16];
    // w·x and w of every value (w = x²).
    let mut wx = [[0f32; L]; 16];
    let mut ws = [[0f32; L]; 16];
    let (mut sumlx, mut suml2) = ([0f32; L], [0f32; L]);
    for (((li, row), wx), ws) in l.iter_mut().zip(x).zip(&mut wx).zip(&mut ws) {
        for k in 0..L {
            li[k] = nearest_int(iscale[k] * row[k]).clamp(-nmax, nmax - 1);
            let w = row[k] * row[k];
            ws[k] = w;
            wx[k] = w * row[k];
            let lf = li[k] as f32;
            sumlx[k] += wx[k] * lf;
            suml2[k] += w * lf * lf;
        }
    }
    for _ in 0..5 {
        let mut changed = [false; L];
        for (((li, row), wx), ws) in l.iter_mut().zip(x).zip(&wx).zip(&ws) {
            for k in 0..L {
                let (w, lf) = (ws[k], li[k] as f32);
                let slx = sumlx[k] - wx[k] * lf;
                let sl2 = suml2[k] - w * lf * lf;
                let new_l = nearest_int(row[k] * sl2 / slx).clamp(-nmax, nmax - 1);
                let nf = new_l as f32;
                let slx_new = slx + wx[k] * nf;
                let sl2_new = sl2 + w * nf * nf;
                let take = slx > 0.0
                    && new_l != li[k]
                    && sl2_new > 0.0
                    && slx_new * slx_new * suml2[k] > sumlx[k] * sumlx[k] * sl2_new;
                li[k] = if take { new_l } else { li[k] };
                sumlx[k] = if take { slx_new } else { sumlx[k] };
                suml2[k] = if take { sl2_new } else { suml2[k] };
                changed[k] |= take;
            }
        }
        if !changed.iter().any(|&c| c) {
            break;
        }
    }
    for (q, li) in levels.iter_mut().zip(&l) {
        for k in 0..L {
            q[k] = if zero[k] { 0 } else { (li[k] + nmax) as u8 };
        }
    }
    each(|k| {
        if !zero[k] && suml2[k] > 0.0 {
            sumlx[k] / suml2[k]
        } else {
            0.0
        }
    })
}
