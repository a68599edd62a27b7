//! The K-quants and IQ4_XS: one 256-element super-block against one Q8_K block per step, the sub-block
//! scales applied with `madd` in the integer lanes, the mins (or the levels' offset) through the
//! activations' stored 16-element sums.

use super::legacy::{iq4_values, mul_i8_pairs};
use super::{fma_block, h, hsum_ps, ld128, ld256, prefetch_ahead};
use crate::blocks::{f32_at, iq4_xs, q2_k, q3_k, q4_k, q5_k, q6_k, q8_k, sub32};
use crate::dot::DotFn;
use llq_types::GgmlType::{self, *};
use std::arch::x86_64::*;

/// The kernels of this module, by weight type.
pub(super) const KERNELS: &[(GgmlType, DotFn)] = &[
    (Q2_K, q2_k),
    (Q3_K, q3_k),
    (Q4_K, q4_k),
    (Q5_K, q5_k),
    (Q6_K, q6_k),
    (IQ4_XS, iq4_xs),
];

/// The two-accumulator loop over a row of super-blocks: `$blk(x, y, &mut acc, &mut mins)`
/// adds one block (its min terms, if any, into `mins`). Yields `hsum(acc + mins)`.
macro_rules! row_loop {
    ($w:expr, $a:expr, $wt:ident, $blk:ident) => {{
        const WB: usize = GgmlType::$wt.type_size();
        const AB: usize = GgmlType::Q8_K.type_size();
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut mins = _mm256_setzero_ps();
        let mut wc = w.chunks_exact(2 * WB);
        let mut ac = a.chunks_exact(2 * AB);
        for (x, y) in (&mut wc).zip(&mut ac) {
            prefetch_ahead(x);
            $blk(&x[..WB], &y[..AB], &mut acc0, &mut mins);
            $blk(&x[WB..], &y[AB..], &mut acc1, &mut mins);
        }
        let rest = wc
            .remainder()
            .chunks_exact(WB)
            .zip(ac.remainder().chunks_exact(AB));
        for (x, y) in rest {
            $blk(x, y, &mut acc0, &mut mins);
        }
        hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), mins))
    }};
}

/// `pshufb` masks: `PAIR[k]` puts i16 element 2k of a 128-bit lane in every i16 of the low lane
/// and element 2k+1 in every i16 of the high lane.
static PAIR: [[u8; 32]; 4] = {
    let mut m = [[0u8; 32]; 4];
    let mut k = 0;
    while k < 4 {
        let mut b = 0;
        while b < 32 {
            let element = 2 * k + b / 16;
            m[k][b] = (2 * element + b % 2) as u8;
            b += 1;
        }
        k += 1;
    }
    m
};

/// `pshufb` masks: `EVERY[j]` puts i16 element j of a 128-bit lane in every i16 of it.
static EVERY: [[u8; 32]; 8] = {
    let mut m = [[0u8; 32]; 8];
    let mut j = 0;
    while j < 8 {
        let mut b = 0;
        while b < 32 {
            m[j][b] = (2 * j + b % 2) as u8;
            b += 1;
        }
        j += 1;
    }
    m
};

/// The 16 sub-block scales of a super-block (i16, 0..8 in the low lane, 8..16 in the high one)
/// as the two halves [`scale_pair`] picks from: each half's eight scales in both lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_halves(sc16: __m256i) -> [__m256i; 2] {
    [
        _mm256_permute2x128_si256::<0x00>(sc16, sc16),
        _mm256_permute2x128_si256::<0x11>(sc16, sc16),
    ]
}

/// The `madd` factors of 32 elements covering sub-blocks 2k and 2k+1 of a half: scale 2k in
/// the low lane, 2k+1 in the high one (one shuffle instead of two broadcasts and an insert).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_pair(half: __m256i, k: usize) -> __m256i {
    _mm256_shuffle_epi8(half, ld256(&PAIR[k]))
}

/// Subtract `d·v` (eight i32 lanes of min terms) from `mins`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn sub_mins(mins: &mut __m256, d: f32, v: __m256i) {
    *mins = _mm256_fnmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(v), *mins);
}

/// Σ_j s_j·bsum_j for 16 sub-block factors `s` (i16) against the Q8_K block's 16 bsums,
/// in eight i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn bsum_dot16(y: &[u8], s: __m256i) -> __m256i {
    _mm256_madd_epi16(ld256(&y[q8_k::BSUMS..]), s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q2_k(x: &[u8], y: &[u8], acc: &mut __m256, mins: &mut __m256) {
    let dy = f32_at(y, q8_k::D);
    let sc = ld128(&x[q2_k::SC..]);
    let m = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(sc), _mm_set1_epi8(0x0f)));
    sub_mins(mins, h(x, q2_k::DMIN) * dy, bsum_dot16(y, m));
    let halves = scale_halves(_mm256_cvtepu8_epi16(_mm_and_si128(sc, _mm_set1_epi8(0x0f))));
    let mut sums = _mm256_setzero_si256();
    let m3 = _mm256_set1_epi8(3);
    for n in 0..2 {
        let q = ld256(&x[q2_k::QS + 32 * n..]);
        for s in 0..4 {
            let v = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * s as i32)), m3);
            let yv = ld256(&y[q8_k::QS + 128 * n + 32 * s..]);
            let scales = scale_pair(halves[n], s);
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(v, yv), scales);
            sums = _mm256_add_epi32(sums, p);
        }
    }
    fma_block(acc, h(x, q2_k::D) * dy, sums);
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q3_k(x: &[u8], y: &[u8], acc: &mut __m256, _: &mut __m256) {
    let dy = f32_at(y, q8_k::D);
    let sc = q3_k::unpack_scales(&x[q3_k::SC..q3_k::D]);
    // Levels are stored as low + 4·high − 4: multiply low + 4·high (0..7, unsigned) and take
    // 4·Σ sc_j·bsum_j off in the integer lanes.
    let sc16 = _mm256_cvtepi8_epi16(ld128(&sc.map(|v| v as u8)));
    let halves = scale_halves(sc16);
    let mut sums = _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_slli_epi32::<2>(bsum_dot16(y, sc16)),
    );
    let hm = ld256(&x[q3_k::HMASK..]);
    let m3 = _mm256_set1_epi8(3);
    let one = _mm256_set1_epi8(1);
    for n in 0..2 {
        let q = ld256(&x[q3_k::QS + 32 * n..]);
        for s in 0..4 {
            let low = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * s as i32)), m3);
            let hb = _mm256_and_si256(
                _mm256_srl_epi16(hm, _mm_cvtsi32_si128((4 * n + s) as i32)),
                one,
            );
            let v = _mm256_or_si256(low, _mm256_slli_epi16::<2>(hb));
            let yv = ld256(&y[q8_k::QS + 128 * n + 32 * s..]);
            let scales = scale_pair(halves[n], s);
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(v, yv), scales);
            sums = _mm256_add_epi32(sums, p);
        }
    }
    fma_block(acc, h(x, q3_k::D) * dy, sums);
}

/// The 12 packed 6-bit scales and mins of a Q4_K/Q5_K super-block ([`sub32::unpack_scale_min`])
/// as bytes: scales in 0..8, mins in 8..16. Unpacked four at a time in 32-bit words.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scales_mins(q: &[u8]) -> __m128i {
    let word = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
    let (a, b, c) = (word(0), word(1), word(2));
    let (low6, low4, top2) = (0x3f3f_3f3f, 0x0f0f_0f0f, 0x3030_3030);
    // Sub-blocks 4..8 take their top two bits from bits 6-7 of the bytes of sub-blocks 0..4.
    let sc = [a & low6, (c & low4) | ((a >> 2) & top2)];
    let mn = [b & low6, ((c >> 4) & low4) | ((b >> 2) & top2)];
    _mm_setr_epi32(sc[0] as i32, sc[1] as i32, mn[0] as i32, mn[1] as i32)
}

/// Q4_K and Q5_K share everything but the fifth bits.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q45_k<const FIVE: bool>(x: &[u8], y: &[u8], acc: &mut __m256, mins: &mut __m256) {
    let dy = f32_at(y, q8_k::D);
    let sm = scales_mins(&x[sub32::SC..sub32::HEAD]);
    // Each min covers 32 elements = two bsums: every min twice, against the 16 bsums.
    let m = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
    sub_mins(mins, h(x, sub32::DMIN) * dy, bsum_dot16(y, m));
    let sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    let m4 = _mm256_set1_epi8(0x0f);
    // The 128 nibble bytes, their length known to the compiler (no check per load).
    let qs = if FIVE {
        &x[q5_k::QS..q5_k::QS + 128]
    } else {
        &x[q4_k::QS..q4_k::QS + 128]
    };
    let mut hb = if FIVE {
        ld256(&x[q5_k::QH..q5_k::QS])
    } else {
        _mm256_setzero_si256()
    };
    let bit4 = _mm256_set1_epi8(0x10);
    let mut sums = _mm256_setzero_si256();
    for c in 0..4 {
        let q = ld256(&qs[32 * c..]);
        let mut lo = _mm256_and_si256(q, m4);
        let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
        if FIVE {
            // Bit 2c of each qh byte is the low half's fifth bit, bit 2c+1 the high half's.
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16::<4>(hb), bit4));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16::<3>(hb), bit4));
            hb = _mm256_srli_epi16::<2>(hb);
        }
        let ylo = ld256(&y[q8_k::QS + 64 * c..]);
        let yhi = ld256(&y[q8_k::QS + 64 * c + 32..]);
        let plo = _mm256_madd_epi16(
            _mm256_maddubs_epi16(lo, ylo),
            _mm256_shuffle_epi8(sc, ld256(&EVERY[2 * c])),
        );
        let phi = _mm256_madd_epi16(
            _mm256_maddubs_epi16(hi, yhi),
            _mm256_shuffle_epi8(sc, ld256(&EVERY[2 * c + 1])),
        );
        sums = _mm256_add_epi32(sums, _mm256_add_epi32(plo, phi));
    }
    fma_block(acc, h(x, sub32::D) * dy, sums);
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q4_k(x: &[u8], y: &[u8], acc: &mut __m256, mins: &mut __m256) {
    blk_q45_k::<false>(x, y, acc, mins)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q5_k(x: &[u8], y: &[u8], acc: &mut __m256, mins: &mut __m256) {
    blk_q45_k::<true>(x, y, acc, mins)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q6_k(x: &[u8], y: &[u8], acc: &mut __m256, _: &mut __m256) {
    let dy = f32_at(y, q8_k::D);
    let sc = &x[q6_k::SC..q6_k::D];
    // Levels are stored +32: take 32·Σ sc_j·bsum_j off in the integer lanes.
    let sc16 = _mm256_cvtepi8_epi16(ld128(sc));
    let halves = scale_halves(sc16);
    let mut sums = _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_slli_epi32::<5>(bsum_dot16(y, sc16)),
    );
    let m4 = _mm256_set1_epi8(0x0f);
    let m2 = _mm256_set1_epi8(0x30);
    for n in 0..2 {
        let qh = ld256(&x[q6_k::QH + 32 * n..]);
        let ql0 = ld256(&x[q6_k::QL + 64 * n..]);
        let ql1 = ld256(&x[q6_k::QL + 64 * n + 32..]);
        let q = [
            _mm256_or_si256(
                _mm256_and_si256(ql0, m4),
                _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m2),
            ),
            _mm256_or_si256(
                _mm256_and_si256(ql1, m4),
                _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m2),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
                _mm256_and_si256(qh, m2),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
                _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m2),
            ),
        ];
        for (k, &q) in q.iter().enumerate() {
            let yv = ld256(&y[q8_k::QS + 128 * n + 32 * k..]);
            let scales = scale_pair(halves[n], k);
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, yv), scales);
            sums = _mm256_add_epi32(sums, p);
        }
    }
    fma_block(acc, h(x, q6_k::D) * dy, sums);
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q2_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, Q2_K, blk_q2_k)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q3_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, Q3_K, blk_q3_k)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, Q4_K, blk_q4_k)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, Q5_K, blk_q5_k)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q6_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, Q6_K, blk_q6_k)
}

/// IQ4_XS: each group's value·y pair sums times its sub-scale (`madd`), in integers as the
/// scalar reference sums them (|ls| ≤ 32: every i32 lane stays far from overflow).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_iq4_xs(x: &[u8], y: &[u8], acc: &mut __m256, _: &mut __m256) {
    let mut sums = _mm256_setzero_si256();
    for g in 0..8 {
        let q = iq4_values(&x[iq4_xs::QS + 16 * g..]);
        let p = mul_i8_pairs(q, ld256(&y[q8_k::QS + 32 * g..]));
        let ls = _mm256_set1_epi16(iq4_xs::sub_scale(x, g) as i16);
        sums = _mm256_add_epi32(sums, _mm256_madd_epi16(p, ls));
    }
    fma_block(acc, h(x, iq4_xs::D) * f32_at(y, q8_k::D), sums);
}
#[target_feature(enable = "avx2,fma,f16c")]
fn iq4_xs_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, IQ4_XS, blk_iq4_xs)
}

entry!(q2_k, q2_k_row, Q2_K);
entry!(q3_k, q3_k_row, Q3_K);
entry!(q4_k, q4_k_row, Q4_K);
entry!(q5_k, q5_k_row, Q5_K);
entry!(q6_k, q6_k_row, Q6_K);
entry!(iq4_xs, iq4_xs_row, IQ4_XS);
