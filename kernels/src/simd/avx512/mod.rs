//! AVX-512 (F, BW, VL) + VNNI dot kernels (x86_64) for the types that dominate token generation:
//! Q4_0 and Q8_0 (`legacy`, with their multi-token kernels over packed activations in `packed`)
//! and Q6_K (`q6_k`); the register tiles of `super::gemm`. Every other type keeps its AVX2
//! kernel in this table.
//!
//! Same structure as [`super::avx2`]: safe `#[target_feature]` functions behind private wrappers
//! that [`table`] installs only after `is_x86_feature_detected!` confirmed every feature they are
//! compiled for (AVX-512 F/BW/VL/VNNI plus AVX2, FMA, F16C: a superset of the AVX2 table's, whose
//! helpers are reused for block tails). The only other `unsafe` is the unaligned 64-byte load in
//! [`ld512`], from a slice checked to hold it.
//!
//! Integer parts equal the scalar reference's exactly. `vpdpbusd` (u8 × i8, four products summed
//! into an i32 lane) and `vpdpwssd` (i16 × i16, two products into an i32 lane) widen before they
//! add and never saturate; `maddubs` is used only where its i16 pair sums stay far from saturation
//! (|q|·|y| ≤ 63·127, two per pair).
//!
//! Vector width per kernel was chosen by measurement on Zen 4, which executes 512-bit operations
//! as two 256-bit halves: Q8_0 (two blocks per 512-bit vector) and Q6_K (64 elements per vector)
//! gain from the wider loads and fewer instructions; Q4_0 is fastest in 256-bit vectors with
//! VNNI (AVX512VL), where its 512-bit version needed extra cross-lane shuffles and was no faster
//! than AVX2. A Q4_K kernel (512- and 256-bit) did not beat AVX2 and is not included.

/// A table entry `$name(n, w, a)` for weights of `$wt`: check the lengths, then enter the
/// feature-enabled `$row(w, a)`.
macro_rules! entry {
    ($name:ident, $row:ident, $wt:expr) => {
        fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            crate::dot::check(n, w, a, $wt);
            // SAFETY: this function is only reachable through the table built by `table()`,
            // which checked that the CPU has AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C.
            unsafe { $row(w, a) }
        }
    };
}

mod legacy;
mod packed;
mod q6_k;

use super::{avx2, gemm};
use crate::dot::{DotTable, Isa};
use std::arch::x86_64::*;

pub(crate) const ISA: Isa = Isa {
    name: "avx512vnni",
    build: table,
};

/// The table with the AVX-512 kernels over the AVX2 ones, or `None` when the CPU lacks any of
/// AVX-512 F/BW/VL/VNNI, AVX2, FMA or F16C.
fn table() -> Option<DotTable> {
    let has = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni");
    if !has {
        return None;
    }
    // Checks AVX2, FMA and F16C.
    let mut t = (avx2::ISA.build)()?;
    t.isa = ISA.name;
    for &(ty, dot) in [legacy::KERNELS, q6_k::KERNELS].concat().iter() {
        t.set(ty, dot);
    }
    for &(ty, matvec, dot4, packer) in packed::KERNELS {
        t.set_packed(ty, matvec, dot4, packer);
    }
    for &g in gemm::AVX512 {
        t.set_gemm(g);
    }
    Some(t)
}

/// 64 bytes from the start of `s`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn ld512(s: &[u8]) -> __m512i {
    let s = &s[..64];
    // SAFETY: `s` holds 64 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
}

/// `lo` in the low 256 bits, `hi` in the high 256 bits.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// Block products `d` (lanes 0..4 of a 128-bit vector): lane `i` in i32 lanes 0..8, lane `j` in
/// lanes 8..16.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn pick2(d: __m128, i: i32, j: i32) -> __m512 {
    let idx = _mm512_mask_blend_epi32(0xff00, _mm512_set1_epi32(i), _mm512_set1_epi32(j));
    _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(d))
}

/// 4 f32 from the start of `s`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn ld_ps128(s: &[u8]) -> __m128 {
    let s = &s[..16];
    // SAFETY: `s` holds 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_ps(s.as_ptr().cast()) }
}
