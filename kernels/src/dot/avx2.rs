//! AVX2 + FMA + F16C dot kernels (x86_64).
//!
//! Every kernel is a safe `#[target_feature]` function (callable only from code with the same
//! features) plus a plain wrapper installed in the table. The wrappers are private and [`table`]
//! returns them only after `is_x86_feature_detected!` confirmed all three features, which is the
//! safety argument of every `unsafe` call below. The only other `unsafe` are the unaligned loads
//! in [`ld256`]/[`ld128`]/[`ldps`], each from a slice checked to hold enough bytes.
//!
//! Integer parts equal the scalar reference's exactly: levels are expanded to bytes and
//! multiplied with `maddubs` (u8 × i8 → i16 pairs, never saturating here: |q|·|y| ≤ 128·127 for
//! Q8_0 weights and ≤ 63·127 for the others, two per pair), then widened with `madd` against the
//! sub-block scales. Float scaling uses FMA into eight lanes of partial sums.

use super::{check, DotFn, DotTable};
use crate::blocks::float::bf16_at;
use crate::blocks::{f16_at, f32_at, q3_k, sub32};
use llq_types::GgmlType::{self, *};
use std::arch::x86_64::*;

/// The table with every AVX2 kernel, or `None` when the CPU lacks AVX2, FMA or F16C.
pub(super) fn table() -> Option<DotTable> {
    if !(is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c"))
    {
        return None;
    }
    let mut t = super::scalar_table().clone();
    t.isa = "avx2";
    let entries: [(GgmlType, DotFn); 13] = [
        (F32, f32),
        (F16, f16),
        (BF16, bf16),
        (Q4_0, q4_0),
        (Q4_1, q4_1),
        (Q5_0, q5_0),
        (Q5_1, q5_1),
        (Q8_0, q8_0),
        (Q2_K, q2_k),
        (Q3_K, q3_k),
        (Q4_K, q4_k),
        (Q5_K, q5_k),
        (Q6_K, q6_k),
    ];
    for (ty, dot) in entries {
        t.set(ty, dot);
    }
    Some(t)
}

/// 32 bytes from the start of `s`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn ld256(s: &[u8]) -> __m256i {
    let s = &s[..32];
    // SAFETY: `s` holds 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

/// 16 bytes from the start of `s`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn ld128(s: &[u8]) -> __m128i {
    let s = &s[..16];
    // SAFETY: `s` holds 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

/// 8 bytes from the start of `s` into the low half of a vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld64(s: &[u8]) -> __m128i {
    let s = &s[..8];
    // SAFETY: `s` holds 8 readable bytes; `loadl_epi64` has no alignment requirement.
    unsafe { _mm_loadl_epi64(s.as_ptr().cast()) }
}

/// 8 little-endian f32 from the start of `s`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ldps(s: &[u8]) -> __m256 {
    let s = &s[..32];
    // SAFETY: `s` holds 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_ps(s.as_ptr().cast()) }
}

/// One fp16 at `at`, converted with F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn h(b: &[u8], at: usize) -> f32 {
    let bits = u16::from_le_bytes([b[at], b[at + 1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_epi32_128(s: __m128i) -> i32 {
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_epi32(v: __m256i) -> i32 {
    hsum_epi32_128(_mm_add_epi32(
        _mm256_castsi256_si128(v),
        _mm256_extracti128_si256::<1>(v),
    ))
}

/// Σ x·y of signed bytes in eight i32 lanes (pairs of adjacent products summed twice).
/// `y` must not hold −128 (activation quantizers never produce it).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mul_sum_i8(x: __m256i, y: __m256i) -> __m256i {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1))
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

/// The two-accumulator loop over a row of super-blocks: `$blk(x, y, &mut acc, &mut extra)`
/// adds one block. Yields `hsum(acc) + extra`.
macro_rules! row_loop {
    ($w:expr, $a:expr, $wb:expr, $ab:expr, $blk:ident) => {{
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut extra = 0f32;
        let mut wc = w.chunks_exact(2 * $wb);
        let mut ac = a.chunks_exact(2 * $ab);
        for (x, y) in (&mut wc).zip(&mut ac) {
            $blk(&x[..$wb], &y[..$ab], &mut acc0, &mut extra);
            $blk(&x[$wb..], &y[$ab..], &mut acc1, &mut extra);
        }
        let rest = wc
            .remainder()
            .chunks_exact($wb)
            .zip(ac.remainder().chunks_exact($ab));
        for (x, y) in rest {
            $blk(x, y, &mut acc0, &mut extra);
        }
        hsum_ps(_mm256_add_ps(acc0, acc1)) + extra
    }};
}

/// Scale one block's eight lanes of integer sums by `d` into `acc`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn fma_block(acc: &mut __m256, d: f32, sums: __m256i) {
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sums), *acc);
}

/// Σ (q−8)·y of a Q4_0 and a Q8_0 block in eight i32 lanes: unsigned levels times y, minus 8·y.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn isums_q4_0(x: &[u8], y: &[u8]) -> __m256i {
    let yv = ld256(&y[2..34]);
    let qy = _mm256_maddubs_epi16(nibbles(&x[2..18]), yv);
    let y8 = _mm256_maddubs_epi16(_mm256_set1_epi8(8), yv);
    _mm256_madd_epi16(_mm256_sub_epi16(qy, y8), _mm256_set1_epi16(1))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn isums_q8_0(x: &[u8], y: &[u8]) -> __m256i {
    mul_sum_i8(ld256(&x[2..34]), ld256(&y[2..34]))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn isums_q5_0(x: &[u8], y: &[u8]) -> __m256i {
    // A clear fifth bit makes the level nibble − 16: set the byte's top four bits.
    let high = _mm256_andnot_si256(bits_to_bytes(&x[2..6]), _mm256_set1_epi8(-16));
    let q = _mm256_or_si256(nibbles(&x[6..22]), high);
    mul_sum_i8(q, ld256(&y[2..34]))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn isums_q4_1(x: &[u8], y: &[u8]) -> __m256i {
    mul_sum_u8_i8(nibbles(&x[4..20]), ld256(&y[4..36]))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn isums_q5_1(x: &[u8], y: &[u8]) -> __m256i {
    let high = _mm256_and_si256(bits_to_bytes(&x[4..8]), _mm256_set1_epi8(0x10));
    let q = _mm256_or_si256(nibbles(&x[8..24]), high);
    mul_sum_u8_i8(q, ld256(&y[4..36]))
}

/// The fp16 at offset `at` of four consecutive blocks of `stride` bytes, converted together.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn h4(b: &[u8], stride: usize, at: usize) -> __m128 {
    let g = |k: usize| i16::from_le_bytes([b[k * stride + at], b[k * stride + at + 1]]);
    _mm_cvtph_ps(_mm_setr_epi16(g(0), g(1), g(2), g(3), 0, 0, 0, 0))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum128(s: __m128) -> f32 {
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// A row of legacy blocks, four per step: the four `d·dy` are converted and multiplied as one
/// vector, then each block's integer lanes (`$isums`) are scaled into two accumulators. With
/// `$affine`, the `m·s` terms (Q4_1/Q5_1, fp16 at offset 2 of both blocks) are summed too.
/// A tail of under four blocks goes one by one.
macro_rules! quad_loop {
    ($w:expr, $a:expr, $wb:expr, $ab:expr, $isums:ident, $affine:expr) => {{
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut ms = _mm_setzero_ps();
        let mut wc = w.chunks_exact(4 * $wb);
        let mut ac = a.chunks_exact(4 * $ab);
        for (x, y) in (&mut wc).zip(&mut ac) {
            let d = _mm256_castps128_ps256(_mm_mul_ps(h4(x, $wb, 0), h4(y, $ab, 0)));
            if $affine {
                ms = _mm_fmadd_ps(h4(x, $wb, 2), h4(y, $ab, 2), ms);
            }
            for k in 0..4 {
                let s = $isums(&x[k * $wb..(k + 1) * $wb], &y[k * $ab..(k + 1) * $ab]);
                // Lane k of d in every lane (the upper, undefined half is never selected).
                let dk = _mm256_permutevar8x32_ps(d, _mm256_set1_epi32(k as i32));
                acc[k % 2] = _mm256_fmadd_ps(dk, _mm256_cvtepi32_ps(s), acc[k % 2]);
            }
        }
        let mut extra = 0f32;
        let rest = wc
            .remainder()
            .chunks_exact($wb)
            .zip(ac.remainder().chunks_exact($ab));
        for (x, y) in rest {
            fma_block(&mut acc[0], h(x, 0) * h(y, 0), $isums(x, y));
            if $affine {
                extra += h(x, 2) * h(y, 2);
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
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut wc = w.chunks_exact(4 * 18);
    let mut ac = a.chunks_exact(4 * 34);
    for (x, y) in (&mut wc).zip(&mut ac) {
        let d = _mm256_castps128_ps256(_mm_mul_ps(h4(x, 18, 0), h4(y, 34, 0)));
        for p in 0..2 {
            let (x0, x1) = (&x[36 * p + 2..36 * p + 18], &x[36 * p + 20..36 * p + 36]);
            let (y0, y1) = (&y[68 * p + 2..68 * p + 34], &y[68 * p + 36..68 * p + 68]);
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
        .chunks_exact(18)
        .zip(ac.remainder().chunks_exact(34));
    for (x, y) in rest {
        fma_block(&mut acc[0], h(x, 0) * h(y, 0), isums_q4_0(x, y));
    }
    hsum_ps(_mm256_add_ps(acc[0], acc[1]))
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_0_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(w, a, 22, 34, isums_q5_0, false)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(w, a, 34, 34, isums_q8_0, false)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_1_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(w, a, 20, 36, isums_q4_1, true)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_1_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(w, a, 24, 36, isums_q5_1, true)
}

// ---- K-quants: one 256-element super-block against one Q8_K block per call. ----

/// Q8_K fields.
pub(super) const YQ: usize = 4;
const YB: usize = 260;

/// A vector of 16 i16: `lo` in the low lane, `hi` in the high lane (two sub-block scales).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_pair(lo: i16, hi: i16) -> __m256i {
    _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo))
}

/// Σ_j s_j·bsum_j for 16 sub-block factors `s` (i16) against the Q8_K block's 16 bsums,
/// in eight i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn bsum_dot16(y: &[u8], s: __m256i) -> __m256i {
    _mm256_madd_epi16(ld256(&y[YB..YB + 32]), s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q2_k(x: &[u8], y: &[u8], acc: &mut __m256, extra: &mut f32) {
    let dy = f32_at(y, 0);
    let sc = ld128(&x[..16]);
    let mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(sc), _mm_set1_epi8(0x0f)));
    let msum = hsum_epi32(bsum_dot16(y, mins));
    *extra -= (h(x, 82) * dy) * msum as f32;
    let mut sums = _mm256_setzero_si256();
    let m3 = _mm256_set1_epi8(3);
    for n in 0..2 {
        let q = ld256(&x[16 + 32 * n..]);
        for s in 0..4 {
            let v = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * s as i32)), m3);
            let yv = ld256(&y[YQ + 128 * n + 32 * s..]);
            let j = 8 * n + 2 * s;
            let scales = scale_pair(i16::from(x[j] & 0xf), i16::from(x[j + 1] & 0xf));
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(v, yv), scales);
            sums = _mm256_add_epi32(sums, p);
        }
    }
    fma_block(acc, h(x, 80) * dy, sums);
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q3_k(x: &[u8], y: &[u8], acc: &mut __m256, _: &mut f32) {
    let dy = f32_at(y, 0);
    let sc = q3_k::unpack_scales(&x[96..108]);
    // Levels are stored as low + 4·high − 4: multiply low + 4·high (0..7, unsigned) and take
    // 4·Σ sc_j·bsum_j off in the integer lanes.
    let sc16 = _mm256_cvtepi8_epi16(ld128(&sc.map(|v| v as u8)));
    let mut sums = _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_slli_epi32::<2>(bsum_dot16(y, sc16)),
    );
    let hm = ld256(&x[..32]);
    let m3 = _mm256_set1_epi8(3);
    let one = _mm256_set1_epi8(1);
    for n in 0..2 {
        let q = ld256(&x[32 + 32 * n..]);
        for s in 0..4 {
            let low = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * s as i32)), m3);
            let hb = _mm256_and_si256(
                _mm256_srl_epi16(hm, _mm_cvtsi32_si128((4 * n + s) as i32)),
                one,
            );
            let v = _mm256_or_si256(low, _mm256_slli_epi16::<2>(hb));
            let yv = ld256(&y[YQ + 128 * n + 32 * s..]);
            let j = 8 * n + 2 * s;
            let scales = scale_pair(i16::from(sc[j]), i16::from(sc[j + 1]));
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(v, yv), scales);
            sums = _mm256_add_epi32(sums, p);
        }
    }
    fma_block(acc, h(x, 108) * dy, sums);
}

/// Q4_K and Q5_K share everything but the fifth bits.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q45_k<const FIVE: bool>(x: &[u8], y: &[u8], acc: &mut __m256, extra: &mut f32) {
    let dy = f32_at(y, 0);
    let (sc, mn) = sub32::unpack_scale_min(&x[4..16]);
    // Each min covers 32 elements = two bsums: add adjacent bsums, then dot with the mins.
    let bs = ld256(&y[YB..YB + 32]);
    let pairs = _mm_hadd_epi16(
        _mm256_castsi256_si128(bs),
        _mm256_extracti128_si256::<1>(bs),
    );
    let mins = _mm_cvtepu8_epi16(ld64(&mn));
    let msum = hsum_epi32_128(_mm_madd_epi16(pairs, mins));
    *extra -= (h(x, 2) * dy) * msum as f32;
    let m4 = _mm256_set1_epi8(0x0f);
    let qs = if FIVE { &x[48..176] } else { &x[16..144] };
    let mut hb = if FIVE {
        ld256(&x[16..48])
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
        let ylo = ld256(&y[YQ + 64 * c..]);
        let yhi = ld256(&y[YQ + 64 * c + 32..]);
        let plo = _mm256_madd_epi16(
            _mm256_maddubs_epi16(lo, ylo),
            _mm256_set1_epi16(i16::from(sc[2 * c])),
        );
        let phi = _mm256_madd_epi16(
            _mm256_maddubs_epi16(hi, yhi),
            _mm256_set1_epi16(i16::from(sc[2 * c + 1])),
        );
        sums = _mm256_add_epi32(sums, _mm256_add_epi32(plo, phi));
    }
    fma_block(acc, h(x, 0) * dy, sums);
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q4_k(x: &[u8], y: &[u8], acc: &mut __m256, extra: &mut f32) {
    blk_q45_k::<false>(x, y, acc, extra)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q5_k(x: &[u8], y: &[u8], acc: &mut __m256, extra: &mut f32) {
    blk_q45_k::<true>(x, y, acc, extra)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blk_q6_k(x: &[u8], y: &[u8], acc: &mut __m256, _: &mut f32) {
    let dy = f32_at(y, 0);
    let sc = &x[192..208];
    // Levels are stored +32: take 32·Σ sc_j·bsum_j off in the integer lanes.
    let sc16 = _mm256_cvtepi8_epi16(ld128(sc));
    let mut sums = _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_slli_epi32::<5>(bsum_dot16(y, sc16)),
    );
    let m4 = _mm256_set1_epi8(0x0f);
    let m2 = _mm256_set1_epi8(0x30);
    for n in 0..2 {
        let qh = ld256(&x[128 + 32 * n..]);
        let ql0 = ld256(&x[64 * n..]);
        let ql1 = ld256(&x[64 * n + 32..]);
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
            let yv = ld256(&y[YQ + 128 * n + 32 * k..]);
            let j = 8 * n + 2 * k;
            let scales = scale_pair(i16::from(sc[j] as i8), i16::from(sc[j + 1] as i8));
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, yv), scales);
            sums = _mm256_add_epi32(sums, p);
        }
    }
    fma_block(acc, h(x, 208) * dy, sums);
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q2_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, 84, 292, blk_q2_k)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q3_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, 110, 292, blk_q3_k)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, 144, 292, blk_q4_k)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, 176, 292, blk_q5_k)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn q6_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, 210, 292, blk_q6_k)
}

// ---- Float rows: 32 elements per step in four accumulators, scalar tail. ----

/// `load(bytes)` converts the 8 elements at the start of `bytes`; `width` bytes per element.
macro_rules! float_row {
    ($w:expr, $a:expr, $width:expr, $load:ident, $one:expr) => {{
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        let step = 8 * $width;
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut wc = w.chunks_exact(4 * step);
        let mut ac = a.chunks_exact(4 * step);
        for (x, y) in (&mut wc).zip(&mut ac) {
            for (k, acc) in acc.iter_mut().enumerate() {
                let (x, y) = (&x[k * step..], &y[k * step..]);
                *acc = _mm256_fmadd_ps($load(x), $load(y), *acc);
            }
        }
        let mut wc8 = wc.remainder().chunks_exact(step);
        let mut ac8 = ac.remainder().chunks_exact(step);
        for (x, y) in (&mut wc8).zip(&mut ac8) {
            acc[0] = _mm256_fmadd_ps($load(x), $load(y), acc[0]);
        }
        let tail = wc8
            .remainder()
            .chunks_exact($width)
            .zip(ac8.remainder().chunks_exact($width))
            .fold(0f32, |s, (x, y)| s + $one(x) * $one(y));
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        hsum_ps(v) + tail
    }};
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld_f16(s: &[u8]) -> __m256 {
    _mm256_cvtph_ps(ld128(s))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld_bf16(s: &[u8]) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(ld128(s))))
}

fn one_f32(b: &[u8]) -> f32 {
    f32_at(b, 0)
}
fn one_f16(b: &[u8]) -> f32 {
    f16_at(b, 0)
}
fn one_bf16(b: &[u8]) -> f32 {
    bf16_at(b)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn f32_row(w: &[u8], a: &[u8]) -> f32 {
    float_row!(w, a, 4, ldps, one_f32)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_row(w: &[u8], a: &[u8]) -> f32 {
    float_row!(w, a, 2, ld_f16, one_f16)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn bf16_row(w: &[u8], a: &[u8]) -> f32 {
    float_row!(w, a, 2, ld_bf16, one_bf16)
}

// ---- Table entries: check the lengths, then enter the feature-enabled code. ----

macro_rules! entry {
    ($name:ident, $row:ident, $wt:expr) => {
        fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            check(n, w, a, $wt);
            // SAFETY: this function is only reachable through the table built by `table()`,
            // which checked that the CPU has AVX2, FMA and F16C.
            unsafe { $row(w, a) }
        }
    };
}

entry!(q4_0, q4_0_row, Q4_0);
entry!(q5_0, q5_0_row, Q5_0);
entry!(q8_0, q8_0_row, Q8_0);
entry!(q4_1, q4_1_row, Q4_1);
entry!(q5_1, q5_1_row, Q5_1);
entry!(q2_k, q2_k_row, Q2_K);
entry!(q3_k, q3_k_row, Q3_K);
entry!(q4_k, q4_k_row, Q4_K);
entry!(q5_k, q5_k_row, Q5_K);
entry!(q6_k, q6_k_row, Q6_K);
entry!(f32, f32_row, F32);
entry!(f16, f16_row, F16);
entry!(bf16, bf16_row, BF16);
