//! Q6_K against Q8_K activations, 64 levels per 512-bit vector.

use super::ld512;
use crate::blocks::{f32_at, q6_k, q8_k};
use crate::dot::DotFn;
use crate::simd::avx2::kquant::bsum_dot16;
use crate::simd::avx2::{h, ld128, ld256, prefetch_ahead};
use llq_types::GgmlType::{self, *};
use std::arch::x86_64::*;

/// The kernels of this module, by weight type.
pub(super) const KERNELS: &[(GgmlType, DotFn)] = &[(Q6_K, q6_k)];

/// 32 i16 lanes: `a` in the low 16, `b` in the high 16.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn halves16(a: i16, b: i16) -> __m512i {
    _mm512_mask_blend_epi16(0xffff_0000, _mm512_set1_epi16(a), _mm512_set1_epi16(b))
}

/// 32 i16 lanes: `a`, `b`, `c`, `d` in the four 128-bit lanes, low to high.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn quarters16(a: i16, b: i16, c: i16, d: i16) -> __m512i {
    let ab = _mm512_mask_blend_epi16(0x0000_ff00, _mm512_set1_epi16(a), _mm512_set1_epi16(b));
    let abc = _mm512_mask_blend_epi16(0x00ff_0000, ab, _mm512_set1_epi16(c));
    _mm512_mask_blend_epi16(0xff00_0000, abc, _mm512_set1_epi16(d))
}

/// The two-accumulator loop over a row of super-blocks: `$blk(x, y, &mut acc, &mut extra)`
/// adds one block. Yields `hsum(acc) + extra`.
macro_rules! row_loop {
    ($w:expr, $a:expr, $wt:ident, $blk:ident) => {{
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        const WB: usize = GgmlType::$wt.type_size();
        const AB: usize = GgmlType::Q8_K.type_size();
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut extra = 0f32;
        let mut wc = w.chunks_exact(2 * WB);
        let mut ac = a.chunks_exact(2 * AB);
        for (x, y) in (&mut wc).zip(&mut ac) {
            prefetch_ahead(x);
            $blk(&x[..WB], &y[..AB], &mut acc0, &mut extra);
            $blk(&x[WB..], &y[AB..], &mut acc1, &mut extra);
        }
        let rest = wc
            .remainder()
            .chunks_exact(WB)
            .zip(ac.remainder().chunks_exact(AB));
        for (x, y) in rest {
            $blk(x, y, &mut acc0, &mut extra);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + extra
    }};
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn fma_block512(acc: &mut __m512, d: f32, sums: __m512i) {
    *acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sums), *acc);
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn blk_q6_k(x: &[u8], y: &[u8], acc: &mut __m512, _: &mut f32) {
    let dy = f32_at(y, q8_k::D);
    let sc = &x[q6_k::SC..q6_k::D];
    // Levels are stored +32: take 32·Σ sc_j·bsum_j off in the integer lanes.
    let sc16 = _mm256_cvtepi8_epi16(ld128(sc));
    let off = _mm256_slli_epi32::<5>(bsum_dot16(y, sc16));
    let mut sums = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), off));
    let m4 = _mm512_set1_epi8(0x0f);
    let m2 = _mm512_set1_epi8(0x30);
    // Per 16-bit lane shift counts: the low 256 bits take the bits for elements 0..32 of a
    // quarter, the high 256 bits those for 32..64.
    let shl = halves16(4, 2);
    let shr = halves16(0, 2);
    for n in 0..2 {
        // 64 low-bit bytes: elements 128n + 0..64 in the low nibbles, + 64..128 in the high.
        let ql = ld512(&x[q6_k::QL + 64 * n..]);
        let qh = _mm512_broadcast_i64x4(ld256(&x[q6_k::QH + 32 * n..]));
        let lo = _mm512_or_si512(
            _mm512_and_si512(ql, m4),
            _mm512_and_si512(_mm512_sllv_epi16(qh, shl), m2),
        );
        let hi = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16::<4>(ql), m4),
            _mm512_and_si512(_mm512_srlv_epi16(qh, shr), m2),
        );
        for (k, q) in [lo, hi].into_iter().enumerate() {
            let yv = ld512(&y[q8_k::QS + 128 * n + 64 * k..]);
            // One 16-element sub-block per 128-bit lane.
            let j = 8 * n + 4 * k;
            let s = |i: usize| i16::from(sc[j + i] as i8);
            let scales = quarters16(s(0), s(1), s(2), s(3));
            sums = _mm512_dpwssd_epi32(sums, _mm512_maddubs_epi16(q, yv), scales);
        }
    }
    fma_block512(acc, h(x, q6_k::D) * dy, sums);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q6_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, Q6_K, blk_q6_k)
}

entry!(q6_k, q6_k_row, Q6_K);
