//! The legacy types and IQ4_NL: one 32-element block per 256-bit vector (Q4_0: two blocks,
//! split into their low and high nibbles); IQ4's nibbles become table values by `pshufb`.

use super::{fma_block, h, h4, hsum128, hsum_ps, ld128, ld256, prefetch_ahead};
use crate::blocks::{iq4, iq4_nl, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1};
use crate::dot::DotFn;
use llq_types::GgmlType::{self, *};
use std::arch::x86_64::*;

/// The kernels of this module, by weight type.
pub(super) const KERNELS: &[(GgmlType, DotFn)] = &[
    (Q4_0, q4_0),
    (Q4_1, q4_1),
    (Q5_0, q5_0),
    (Q5_1, q5_1),
    (Q8_0, q8_0),
    (IQ4_NL, iq4_nl),
];

/// x·y of signed bytes, adjacent pairs summed into sixteen i16 lanes (|x·y| ≤ 127·127 each,
/// so a pair never saturates). `y` must not hold −128 (activation quantizers never produce it).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn mul_i8_pairs(x: __m256i, y: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// Σ x·y of signed bytes in eight i32 lanes (pairs of adjacent products summed twice).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mul_sum_i8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(mul_i8_pairs(x, y), _mm256_set1_epi16(1))
}

/// Σ x·y of unsigned `x` and signed `y` bytes in eight i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mul_sum_u8_i8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
}

/// 16 nibble bytes to 32 levels: low nibbles (elements 0..16) in the low lane, high in the high.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn nibbles(qs: &[u8]) -> __m256i {
    let t = ld128(qs);
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(t), t);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
}

/// Byte j = 0xFF if bit j of the little-endian u32 at the start of `qh` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bits_to_bytes(qh: &[u8]) -> __m256i {
    let bits = i32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    // Byte j gets source byte j/8, then all bits but bit j%8 are forced on.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(bits),
        _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        ),
    );
    let mask = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(spread, mask), _mm256_set1_epi8(-1))
}

/// Σ (q−8)·y of a Q4_0 and a Q8_0 block in eight i32 lanes: unsigned levels times y, minus 8·y.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn isums_q4_0(x: &[u8], y: &[u8]) -> __m256i {
    let yv = ld256(q8_0::qs(y));
    let qy = _mm256_maddubs_epi16(nibbles(&x[q4_0::QS..]), yv);
    let y8 = _mm256_maddubs_epi16(_mm256_set1_epi8(8), yv);
    _mm256_madd_epi16(_mm256_sub_epi16(qy, y8), _mm256_set1_epi16(1))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn isums_q8_0(x: &[u8], y: &[u8]) -> __m256i {
    mul_sum_i8(ld256(q8_0::qs(x)), ld256(q8_0::qs(y)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn isums_q5_0(x: &[u8], y: &[u8]) -> __m256i {
    // A clear fifth bit makes the level nibble − 16: set the byte's top four bits.
    let high = _mm256_andnot_si256(bits_to_bytes(&x[q5_0::QH..]), _mm256_set1_epi8(-16));
    let q = _mm256_or_si256(nibbles(&x[q5_0::QS..]), high);
    mul_sum_i8(q, ld256(q8_0::qs(y)))
}

/// The IQ4 table in both lanes, for `pshufb` lookups by nibble.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn iq4_table() -> __m256i {
    let k = iq4::KVALUES;
    _mm256_broadcastsi128_si256(_mm_setr_epi8(
        k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13],
        k[14], k[15],
    ))
}

/// The 32 table values of an IQ4 group's 16 nibble bytes, in element order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn iq4_values(qs: &[u8]) -> __m256i {
    _mm256_shuffle_epi8(iq4_table(), nibbles(qs))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn isums_iq4_nl(x: &[u8], y: &[u8]) -> __m256i {
    mul_sum_i8(iq4_values(&x[iq4_nl::QS..]), ld256(q8_0::qs(y)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn isums_q4_1(x: &[u8], y: &[u8]) -> __m256i {
    mul_sum_u8_i8(nibbles(&x[q4_1::QS..]), ld256(q8_1::qs(y)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn isums_q5_1(x: &[u8], y: &[u8]) -> __m256i {
    let high = _mm256_and_si256(bits_to_bytes(&x[q5_1::QH..]), _mm256_set1_epi8(0x10));
    let q = _mm256_or_si256(nibbles(&x[q5_1::QS..]), high);
    mul_sum_u8_i8(q, ld256(q8_1::qs(y)))
}

/// A row of legacy blocks, four per step: the four `d·dy` are converted and multiplied as one
/// vector, then each block's integer lanes (`$isums`) are scaled into two accumulators. With
/// `$affine` (the offsets of `m` and of the activations' `s`), the `m·s` terms of Q4_1/Q5_1 are
/// summed too. A tail of under four blocks goes one by one.
macro_rules! quad_loop {
    ($w:expr, $a:expr, ($wt:ident, $wd:expr), ($at:ident, $ad:expr), $isums:ident, $affine:expr) => {{
        const WB: usize = GgmlType::$wt.type_size();
        const AB: usize = GgmlType::$at.type_size();
        let affine: Option<(usize, usize)> = $affine;
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut ms = _mm_setzero_ps();
        let mut wc = w.chunks_exact(4 * WB);
        let mut ac = a.chunks_exact(4 * AB);
        for (x, y) in (&mut wc).zip(&mut ac) {
            prefetch_ahead(x);
            let d = _mm256_castps128_ps256(_mm_mul_ps(h4(x, WB, $wd), h4(y, AB, $ad)));
            if let Some((m, s)) = affine {
                ms = _mm_fmadd_ps(h4(x, WB, m), h4(y, AB, s), ms);
            }
            for k in 0..4 {
                let s = $isums(&x[k * WB..(k + 1) * WB], &y[k * AB..(k + 1) * AB]);
                // Lane k of d in every lane (the upper, undefined half is never selected).
                let dk = _mm256_permutevar8x32_ps(d, _mm256_set1_epi32(k as i32));
                acc[k % 2] = _mm256_fmadd_ps(dk, _mm256_cvtepi32_ps(s), acc[k % 2]);
            }
        }
        let mut extra = 0f32;
        let rest = wc
            .remainder()
            .chunks_exact(WB)
            .zip(ac.remainder().chunks_exact(AB));
        for (x, y) in rest {
            fma_block(&mut acc[0], h(x, $wd) * h(y, $ad), $isums(x, y));
            if let Some((m, s)) = affine {
                extra += h(x, m) * h(y, s);
            }
        }
        hsum_ps(_mm256_add_ps(acc[0], acc[1])) + (hsum128(ms) + extra)
    }};
}

/// Q4_0 works on pairs of blocks: both blocks' low nibbles share one vector (block k in the low
/// lane, k+1 in the high lane), their high nibbles another, against the matching activation
/// halves. That saves the per-block lane shuffle of [`nibbles`] (12 → 10 ops per block), which
/// matters because Q4_0 matvec is compute-bound on AVX2.
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_row(w: &[u8], a: &[u8]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let eight = _mm256_set1_epi8(8);
    let ones = _mm256_set1_epi16(1);
    // d of block 2p in lanes 0-3, of block 2p+1 in lanes 4-7.
    let pick = [
        _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1),
        _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3),
    ];
    const WB: usize = GgmlType::Q4_0.type_size();
    const AB: usize = GgmlType::Q8_0.type_size();
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut wc = w.chunks_exact(4 * WB);
    let mut ac = a.chunks_exact(4 * AB);
    for (x, y) in (&mut wc).zip(&mut ac) {
        prefetch_ahead(x);
        let d = _mm256_castps128_ps256(_mm_mul_ps(h4(x, WB, q4_0::D), h4(y, AB, q8_0::D)));
        for p in 0..2 {
            let x0 = &x[2 * p * WB + q4_0::QS..][..16];
            let x1 = &x[(2 * p + 1) * WB + q4_0::QS..][..16];
            let y0 = &y[2 * p * AB + q8_0::QS..][..32];
            let y1 = &y[(2 * p + 1) * AB + q8_0::QS..][..32];
            let q = _mm256_set_m128i(ld128(x1), ld128(x0));
            let lo = _mm256_and_si256(q, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
            let ylo = _mm256_set_m128i(ld128(y1), ld128(y0));
            let yhi = _mm256_set_m128i(ld128(&y1[16..]), ld128(&y0[16..]));
            // |q·y| pair sums ≤ 2·15·127 and 2·8·127: two of each still fit in i16.
            let qy = _mm256_add_epi16(_mm256_maddubs_epi16(lo, ylo), _mm256_maddubs_epi16(hi, yhi));
            let y8 = _mm256_add_epi16(
                _mm256_maddubs_epi16(eight, ylo),
                _mm256_maddubs_epi16(eight, yhi),
            );
            let sums = _mm256_madd_epi16(_mm256_sub_epi16(qy, y8), ones);
            let dk = _mm256_permutevar8x32_ps(d, pick[p]);
            acc[p] = _mm256_fmadd_ps(dk, _mm256_cvtepi32_ps(sums), acc[p]);
        }
    }
    let rest = wc
        .remainder()
        .chunks_exact(WB)
        .zip(ac.remainder().chunks_exact(AB));
    for (x, y) in rest {
        fma_block(&mut acc[0], h(x, q4_0::D) * h(y, q8_0::D), isums_q4_0(x, y));
    }
    hsum_ps(_mm256_add_ps(acc[0], acc[1]))
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_0_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(w, a, (Q5_0, q5_0::D), (Q8_0, q8_0::D), isums_q5_0, None)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(w, a, (Q8_0, q8_0::D), (Q8_0, q8_0::D), isums_q8_0, None)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn iq4_nl_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(
        w,
        a,
        (IQ4_NL, iq4_nl::D),
        (Q8_0, q8_0::D),
        isums_iq4_nl,
        None
    )
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_1_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(
        w,
        a,
        (Q4_1, q4_1::D),
        (Q8_1, q8_1::D),
        isums_q4_1,
        Some((q4_1::M, q8_1::S))
    )
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_1_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(
        w,
        a,
        (Q5_1, q5_1::D),
        (Q8_1, q8_1::D),
        isums_q5_1,
        Some((q5_1::M, q8_1::S))
    )
}

entry!(q4_0, q4_0_row, Q4_0);
entry!(q5_0, q5_0_row, Q5_0);
entry!(q8_0, q8_0_row, Q8_0);
entry!(iq4_nl, iq4_nl_row, IQ4_NL);
entry!(q4_1, q4_1_row, Q4_1);
entry!(q5_1, q5_1_row, Q5_1);
