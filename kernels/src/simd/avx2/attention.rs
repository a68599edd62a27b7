//! The attention loops of `crate::attention` compiled again for AVX2: a binary built for
//! baseline x86-64 would otherwise run them 4 lanes wide (SSE). Only AVX2 is enabled, not FMA,
//! so no product is fused and the results equal the portable code's bit for bit.

use crate::attention::{axpys_lanes, softmax_lanes, Rows};
use std::arch::x86_64::*;

#[target_feature(enable = "avx2")]
pub(crate) fn dots(q: &[f32], rows: Rows, out: &mut [f32]) {
    assert_eq!(q.len(), rows.len, "query and key widths");
    let done = out.len() / 4 * 4;
    let mut groups = out.chunks_exact_mut(4);
    for (g, o) in (&mut groups).enumerate() {
        let p = 4 * g;
        let r = [
            rows.row(p),
            rows.row(p + 1),
            rows.row(p + 2),
            rows.row(p + 3),
        ];
        o.copy_from_slice(&dot_rows(q, r));
    }
    for (i, o) in groups.into_remainder().iter_mut().enumerate() {
        *o = dot_rows(q, [rows.row(done + i)])[0];
    }
}

/// `crate::attention`'s `dot_rows` written with AVX2 intrinsics (the compiler did not vectorize
/// the generic code for several rows): the same lanes, products, sums and reduction order.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_rows<const N: usize>(q: &[f32], r: [&[f32]; N]) -> [f32; N] {
    let ld = |s: &[f32]| {
        let s = &s[..8];
        // SAFETY: `s` holds 8 readable f32; `loadu` has no alignment requirement.
        unsafe { _mm256_loadu_ps(s.as_ptr()) }
    };
    let chunks = q.len() / 8;
    let whole = 8 * chunks;
    let mut acc = [_mm256_setzero_ps(); N];
    for c in 0..chunks {
        let qv = ld(&q[8 * c..]);
        for (acc, r) in acc.iter_mut().zip(&r) {
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(qv, ld(&r[8 * c..])));
        }
    }
    let mut out = [0f32; N];
    for ((o, acc), r) in out.iter_mut().zip(acc).zip(r) {
        let tail: f32 = q[whole..].iter().zip(&r[whole..]).map(|(x, y)| x * y).sum();
        // Lanes i + (i + 4), then (0 + 2) and (1 + 3), then their sum: the portable order.
        let s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        let s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
        *o = _mm_cvtss_f32(s1) + tail;
    }
    out
}

#[target_feature(enable = "avx2")]
pub(crate) fn axpys(w: &[f32], rows: Rows, y: &mut [f32]) {
    axpys_lanes(w, rows, y)
}

#[target_feature(enable = "avx2")]
pub(crate) fn softmax(x: &mut [f32]) {
    softmax_lanes(x)
}
