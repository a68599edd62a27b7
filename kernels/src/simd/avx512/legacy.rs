//! Q4_0 (256-bit VNNI) and Q8_0 (512-bit) against Q8_0 activations, one row at a time.

use super::{join, pick2};
use crate::blocks::{q4_0, q8_0};
use crate::dot::DotFn;
use crate::simd::avx2::legacy::{isums_q4_0, isums_q8_0};
use crate::simd::avx2::{fma_block, h, h4, hsum_ps, ld128, ld256, prefetch_ahead};
use llq_types::GgmlType::{self, *};
use std::arch::x86_64::*;

/// The kernels of this module, by weight type.
pub(super) const KERNELS: &[(GgmlType, DotFn)] = &[(Q4_0, q4_0), (Q8_0, q8_0)];

pub(super) const Q4_0_BYTES: usize = Q4_0.type_size();
pub(super) const Q8_0_BYTES: usize = Q8_0.type_size();

/// The 16 nibble bytes of block `k` of a row of Q4_0 blocks.
#[inline(always)]
pub(super) fn q4_0_levels(x: &[u8], k: usize) -> &[u8] {
    &x[k * Q4_0_BYTES + q4_0::QS..][..16]
}

/// The 32 levels of block `k` of a row of Q8_0 blocks.
#[inline(always)]
pub(super) fn q8_0_levels(x: &[u8], k: usize) -> &[u8] {
    &x[k * Q8_0_BYTES + q8_0::QS..][..32]
}

/// Two Q8_0 blocks against two Q8_0 activation blocks (32 bytes each): Σ x·y in 16 i32 lanes.
/// |x| goes in as u8 (−128 becomes 128, still exact) and x's sign moves onto y, which must not
/// hold −128 (activation quantizers never produce it).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn isums2_q8_0(x0: &[u8], x1: &[u8], y0: &[u8], y1: &[u8]) -> __m512i {
    let x = join(ld256(x0), ld256(x1));
    let y = join(ld256(y0), ld256(y1));
    let z = _mm512_setzero_si512();
    let neg = _mm512_movepi8_mask(x);
    let sy = _mm512_mask_sub_epi8(y, neg, z, y);
    _mm512_dpbusd_epi32(z, _mm512_abs_epi8(x), sy)
}

/// Q4_0 with 256-bit VNNI (AVX512VL): pairs of blocks as in the AVX2 kernel (block k in the low
/// 128-bit lane, k+1 in the high one; low nibbles in one vector, high nibbles in another), each
/// `maddubs` + `madd` pair replaced by one `vpdpbusd`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q4_0_row(w: &[u8], a: &[u8]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let eight = _mm256_set1_epi8(8);
    let pick = [
        _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1),
        _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3),
    ];
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut wc = w.chunks_exact(4 * Q4_0_BYTES);
    let mut ac = a.chunks_exact(4 * Q8_0_BYTES);
    for (x, y) in (&mut wc).zip(&mut ac) {
        prefetch_ahead(x);
        let dx = h4(x, Q4_0_BYTES, q4_0::D);
        let d = _mm256_castps128_ps256(_mm_mul_ps(dx, h4(y, Q8_0_BYTES, q8_0::D)));
        for (p, acc) in acc.iter_mut().enumerate() {
            let (x0, x1) = (q4_0_levels(x, 2 * p), q4_0_levels(x, 2 * p + 1));
            let (y0, y1) = (q8_0_levels(y, 2 * p), q8_0_levels(y, 2 * p + 1));
            let q = _mm256_set_m128i(ld128(x1), ld128(x0));
            let lo = _mm256_and_si256(q, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
            let ylo = _mm256_set_m128i(ld128(y1), ld128(y0));
            let yhi = _mm256_set_m128i(ld128(&y1[16..]), ld128(&y0[16..]));
            let z = _mm256_setzero_si256();
            let qy = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, lo, ylo), hi, yhi);
            let y8 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, eight, ylo), eight, yhi);
            let dk = _mm256_permutevar8x32_ps(d, pick[p]);
            *acc = _mm256_fmadd_ps(dk, _mm256_cvtepi32_ps(_mm256_sub_epi32(qy, y8)), *acc);
        }
    }
    let rest = wc
        .remainder()
        .chunks_exact(Q4_0_BYTES)
        .zip(ac.remainder().chunks_exact(Q8_0_BYTES));
    for (x, y) in rest {
        fma_block(&mut acc[0], h(x, q4_0::D) * h(y, q8_0::D), isums_q4_0(x, y));
    }
    hsum_ps(_mm256_add_ps(acc[0], acc[1]))
}

/// Q8_0 in 512-bit vectors, four blocks per step: the four `d·dy` are converted as one vector,
/// each pair of blocks goes through [`isums2_q8_0`] into its own accumulator. A tail of under
/// four blocks goes one by one through the AVX2 [`isums_q8_0`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q8_0_row(w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [_mm512_setzero_ps(); 2];
    let mut wc = w.chunks_exact(4 * Q8_0_BYTES);
    let mut ac = a.chunks_exact(4 * Q8_0_BYTES);
    for (x, y) in (&mut wc).zip(&mut ac) {
        prefetch_ahead(x);
        let d = _mm_mul_ps(h4(x, Q8_0_BYTES, q8_0::D), h4(y, Q8_0_BYTES, q8_0::D));
        for (p, acc) in acc.iter_mut().enumerate() {
            let (b0, b1) = (2 * p, 2 * p + 1);
            let s = isums2_q8_0(
                q8_0_levels(x, b0),
                q8_0_levels(x, b1),
                q8_0_levels(y, b0),
                q8_0_levels(y, b1),
            );
            let dk = pick2(d, b0 as i32, b1 as i32);
            *acc = _mm512_fmadd_ps(dk, _mm512_cvtepi32_ps(s), *acc);
        }
    }
    let mut tail = _mm256_setzero_ps();
    let rest = wc
        .remainder()
        .chunks_exact(Q8_0_BYTES)
        .zip(ac.remainder().chunks_exact(Q8_0_BYTES));
    for (x, y) in rest {
        fma_block(&mut tail, h(x, q8_0::D) * h(y, q8_0::D), isums_q8_0(x, y));
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) + hsum_ps(tail)
}

entry!(q4_0, q4_0_row, Q4_0);
entry!(q8_0, q8_0_row, Q8_0);
