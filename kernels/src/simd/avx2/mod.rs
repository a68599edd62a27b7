//! AVX2 + FMA + F16C dot kernels (x86_64): the legacy types in `legacy`, the K-quants in
//! `kquant`, the float types in `float`; the loads and reductions they share are here. Also the
//! attention loops compiled for AVX2 alone (`attention`). The table also has the AVX2 register
//! tiles of `super::gemm`.
//!
//! Every kernel is a safe `#[target_feature]` function (callable only from code with the same
//! features) plus a plain wrapper (`entry!`) installed in the table. The wrappers are private
//! and [`table`] returns them only after `is_x86_feature_detected!` confirmed all three
//! features, which is the safety argument of every `unsafe` call below. The only other `unsafe`
//! are the unaligned loads in [`ld256`]/[`ld128`]/[`ldps`], each from a slice checked to hold
//! enough bytes.
//!
//! Integer parts equal the scalar reference's exactly: levels are expanded to bytes and
//! multiplied with `maddubs` (u8 × i8 → i16 pairs, never saturating here: |q|·|y| ≤ 128·127 for
//! Q8_0 weights and ≤ 63·127 for the others, two per pair), then widened with `madd` against the
//! sub-block scales. Float scaling uses FMA into eight lanes of partial sums.

/// A table entry `$name(n, w, a)` for weights of `$wt`: check the lengths, then enter the
/// feature-enabled `$row(w, a)`.
macro_rules! entry {
    ($name:ident, $row:ident, $wt:expr) => {
        fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            crate::dot::check(n, w, a, $wt);
            // SAFETY: this function is only reachable through the table built by `table()`,
            // which checked that the CPU has AVX2, FMA and F16C.
            unsafe { $row(w, a) }
        }
    };
}

pub(crate) mod attention;
mod float;
pub(crate) mod kquant;
pub(crate) mod legacy;

use super::gemm;
use crate::dot::{self, DotTable, Isa};
use std::arch::x86_64::*;

pub(crate) const ISA: Isa = Isa {
    name: "avx2",
    build: table,
};

/// The table with every AVX2 kernel over the scalar one, or `None` when the CPU lacks AVX2, FMA
/// or F16C.
fn table() -> Option<DotTable> {
    if !(is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c"))
    {
        return None;
    }
    let mut t = dot::scalar_table().clone();
    t.isa = ISA.name;
    for &(ty, dot) in [legacy::KERNELS, kquant::KERNELS, float::KERNELS]
        .concat()
        .iter()
    {
        t.set(ty, dot);
    }
    for &g in gemm::AVX2 {
        t.set_gemm(g);
    }
    Some(t)
}

/// How far ahead of the block being read the row loops prefetch weights: in token generation
/// every weight comes from DRAM once, and the hardware prefetcher alone leaves the loops
/// waiting on it (Q4_K matvec from DRAM, 2 threads: 15.5 → 21.5 GB/s with 1 KiB).
const PREFETCH_AHEAD: usize = 1024;

/// Prefetch the cache lines `PREFETCH_AHEAD` bytes past those of `s` (a step of a row loop).
/// Past the end of the row this reaches into the next row of the matrix, which is read next;
/// past the end of the matrix the hint is harmless (prefetches never fault).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn prefetch_ahead(s: &[u8]) {
    for line in (0..s.len()).step_by(64) {
        let at = s.as_ptr().wrapping_add(PREFETCH_AHEAD + line);
        _mm_prefetch::<_MM_HINT_T0>(at.cast());
    }
}

/// 32 bytes from the start of `s`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn ld256(s: &[u8]) -> __m256i {
    let s = &s[..32];
    // SAFETY: `s` holds 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

/// 16 bytes from the start of `s`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn ld128(s: &[u8]) -> __m128i {
    let s = &s[..16];
    // SAFETY: `s` holds 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

/// 8 little-endian f32 from the start of `s`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn ldps(s: &[u8]) -> __m256 {
    let s = &s[..32];
    // SAFETY: `s` holds 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_ps(s.as_ptr().cast()) }
}

/// One fp16 at `at`, converted with F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn h(b: &[u8], at: usize) -> f32 {
    let bits = u16::from_le_bytes([b[at], b[at + 1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Scale one block's eight lanes of integer sums by `d` into `acc`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn fma_block(acc: &mut __m256, d: f32, sums: __m256i) {
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sums), *acc);
}

/// The fp16 at offset `at` of four consecutive blocks of `stride` bytes, converted together.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn h4(b: &[u8], stride: usize, at: usize) -> __m128 {
    let g = |k: usize| i16::from_le_bytes([b[k * stride + at], b[k * stride + at + 1]]);
    _mm_cvtph_ps(_mm_setr_epi16(g(0), g(1), g(2), g(3), 0, 0, 0, 0))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum128(s: __m128) -> f32 {
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}
