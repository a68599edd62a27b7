//! Register-tiled matmul for many tokens: weight rows repacked sixteen at a time, one row per
//! i32 lane of a 512-bit vector (AVX-512) or of two 256-bit vectors (AVX2, AVX-VNNI).
//!
//! Why: a row-at-a-time kernel ends every block with a step across lanes (picking each block's
//! scale, and a final reduction) that costs about as much as the multiplies. Here the rows'
//! levels are interleaved four bytes at a time, so one `vpdpbusd` (or `vpmaddubsw`) against
//! four broadcast activation bytes advances all the rows of a vector, and a block's scaling is a
//! few vector operations per token for those rows together.
//!
//! The repack is done per tile of sixteen rows while the matmul runs, into a buffer of the task
//! that is then read for every token: one pass over the weights per matmul, and the
//! memory-mapped weights are never copied as a whole.
//!
//! For the quantized types results are bit-identical to the scalar reference (the block files):
//! the same exact integer block sums, and per row the same f32 operations in the same order,
//! block after block (separate multiplies and adds, no FMA). The float types (`float`) are
//! not: see there.
//!
//! One module per tile format: `legacy` (Q4_0, Q8_0, IQ4_NL: 32-element blocks, one scale), `q4_k`
//! (Q4_K and Q5_K: 256-element super-blocks with 6-bit sub-block scales and mins), `q6_k` (16
//! signed sub-block scales, levels offset by 32) and `float` (F16, BF16, F32). Each holds the
//! layout (repack, activation packing, shared by every ISA) and one kernel module per register
//! width: `zmm` (AVX-512 F/BW/VL/VNNI) and `ymm` (the AVX2 and AVX-VNNI kernels, one loop per
//! format stamped out for each instruction set). The AVX2 kernels use `vpmaddubsw` (u8 × i8,
//! pairs summed into saturating i16 lanes), so each format bounds how many of its products
//! may be summed in i16 before widening (see there); `vpdpbusd` widens first and never
//! saturates. The 256-bit kernels take a tile as two halves of eight rows and at most
//! [`YMM_TOKENS`] tokens per pass, so that their accumulators stay in the sixteen registers.
//! The [`Gemm`] descriptor is ISA-independent (`crate::dot`); each table installs the list of
//! its ISA ([`AVX512`], [`AVX2`], [`AVXVNNI`]), other CPUs keep the row-at-a-time path.

mod float;
mod legacy;
mod q4_k;
mod q6_k;

use crate::dot::{Gemm, Packer, TILE_ROWS};
use llq_types::GgmlType;

/// The tiled kernels for a CPU with AVX-512 F/BW/VL/VNNI (and AVX2, FMA, F16C): the AVX-512
/// table installs them after checking those features.
pub(super) const AVX512: &[Gemm] = &[
    legacy::Q4_0,
    legacy::Q8_0,
    legacy::IQ4_NL,
    q4_k::Q4_K,
    q4_k::Q5_K,
    q6_k::Q6_K,
    float::F16,
    float::BF16,
    float::F32,
];

/// The tiled kernels for a CPU with AVX2, FMA and F16C (installed by the AVX2 table).
pub(super) const AVX2: &[Gemm] = &[
    legacy::Q4_0_AVX2,
    legacy::Q8_0_AVX2,
    legacy::IQ4_NL_AVX2,
    q4_k::Q4_K_AVX2,
    q4_k::Q5_K_AVX2,
    q6_k::Q6_K_AVX2,
    float::F16_YMM,
    float::BF16_YMM,
    float::F32_YMM,
];

/// The tiled kernels for a CPU with AVX-VNNI (256-bit `vpdpbusd`) besides AVX2, FMA and F16C
/// (installed by the AVX-VNNI table). The float tiles have no integer products: the AVX2 ones.
pub(super) const AVXVNNI: &[Gemm] = &[
    legacy::Q4_0_VNNI,
    legacy::Q8_0_VNNI,
    legacy::IQ4_NL_VNNI,
    q4_k::Q4_K_VNNI,
    q4_k::Q5_K_VNNI,
    q6_k::Q6_K_VNNI,
    float::F16_YMM,
    float::BF16_YMM,
    float::F32_YMM,
];

/// Tokens per pass of a 256-bit kernel over a half tile (a call of up to [`TILE_TOKENS`] makes
/// one pass per group of at most this many).
const YMM_TOKENS: usize = 4;

/// 64 bytes from the start of `s`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn ld(s: &[u8]) -> std::arch::x86_64::__m512i {
    let s = &s[..64];
    // SAFETY: `s` holds 64 readable bytes; `loadu` has no alignment requirement.
    unsafe { std::arch::x86_64::_mm512_loadu_si512(s.as_ptr().cast()) }
}

/// The 4 bytes at `s[at..]` in every i32 lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn bcast(s: &[u8], at: usize) -> std::arch::x86_64::__m512i {
    let v = i32::from_le_bytes(s[at..at + 4].try_into().unwrap());
    std::arch::x86_64::_mm512_set1_epi32(v)
}

/// The 4 bytes at `s[at..]` in every i32 lane of a 256-bit vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bcast8(s: &[u8], at: usize) -> std::arch::x86_64::__m256i {
    let v = i32::from_le_bytes(s[at..at + 4].try_into().unwrap());
    std::arch::x86_64::_mm256_set1_epi32(v)
}

/// Stores the accumulators of `T` tokens for rows `8·half..8·half + 8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store8<const T: usize>(
    acc: [std::arch::x86_64::__m256; T],
    out: &mut [[f32; TILE_ROWS]],
    half: usize,
) {
    for (o, acc) in out.iter_mut().zip(acc) {
        let o = &mut o[8 * half..8 * half + 8];
        // SAFETY: `o` is 8 writable f32; `storeu` has no alignment requirement.
        unsafe { std::arch::x86_64::_mm256_storeu_ps(o.as_mut_ptr(), acc) }
    }
}

/// Both i16 halves of each i32 lane set to the lane's low i16: a sub-block scale stored as
/// an i32 (below 2^15 in magnitude), made the multiplier of `vpmaddwd` for the two pair sums
/// of a lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn twice16(v: std::arch::x86_64::__m256i) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    _mm256_blend_epi16::<0b1010_1010>(v, _mm256_slli_epi32::<16>(v))
}

/// Block `k` (of `bytes` bytes) of each of the `T` activation rows packed in `acts`.
#[inline]
fn blocks<const T: usize>(acts: &[u8], k: usize, bytes: usize) -> [&[u8]; T] {
    let row = acts.len() / T;
    std::array::from_fn(|t| &acts[t * row + k * bytes..][..bytes])
}

/// Stores the accumulators of `T` tokens.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn store<const T: usize>(acc: [std::arch::x86_64::__m512; T], out: &mut [[f32; TILE_ROWS]]) {
    for (o, acc) in out.iter_mut().zip(acc) {
        // SAFETY: `o` is 16 writable f32; `storeu` has no alignment requirement.
        unsafe { std::arch::x86_64::_mm512_storeu_ps(o.as_mut_ptr(), acc) }
    }
}

/// The body of a [`TileFn`] named `$run`: checks the lengths against `$tile_bytes` and
/// `$act_bytes`, then calls the feature-enabled `$tokens::<T>` on groups of at most `$max`
/// tokens (as even as can be: 7 as 4 + 3), each a pass over the tile.
macro_rules! run_tile {
    ($run:ident, $tokens:ident, $tile_bytes:expr, $act_bytes:expr, $max:expr) => {
        pub(super) fn $run(n: usize, tile: &[u8], acts: &[u8], out: &mut [[f32; TILE_ROWS]]) {
            assert_eq!(tile.len(), $tile_bytes(n), "tile of {n}");
            assert!(out.len() <= TILE_TOKENS, "{} tokens in a call", out.len());
            assert_eq!(acts.len(), out.len() * $act_bytes(n), "packed activations");
            let row = $act_bytes(n);
            let passes = out.len().div_ceil($max);
            let mut t0 = 0;
            for p in 0..passes {
                let nt = (out.len() - t0) / (passes - p);
                let (a, o) = (&acts[t0 * row..(t0 + nt) * row], &mut out[t0..t0 + nt]);
                // SAFETY: a tiled kernel is only installed by the table of its instruction set,
                // built after `is_x86_feature_detected!` confirmed every feature `$tokens` is
                // compiled for.
                unsafe {
                    match nt {
                        8 => $tokens::<8>(tile, a, o),
                        7 => $tokens::<7>(tile, a, o),
                        6 => $tokens::<6>(tile, a, o),
                        5 => $tokens::<5>(tile, a, o),
                        4 => $tokens::<4>(tile, a, o),
                        3 => $tokens::<3>(tile, a, o),
                        2 => $tokens::<2>(tile, a, o),
                        1 => $tokens::<1>(tile, a, o),
                        _ => {}
                    }
                }
                t0 += nt;
            }
        }
    };
}
use run_tile;

/// A Q8_K block (`crate::blocks::q8_k`): the K-quant tiles read activation rows as quantized.
const Q8K_BLOCK: usize = GgmlType::Q8_K.type_size();

fn q8k_bytes(n: usize) -> usize {
    n / GgmlType::Q8_K.block_size() * Q8K_BLOCK
}

fn q8k_copy(n: usize, a: &[u8], out: &mut [u8]) {
    assert_eq!(out.len(), q8k_bytes(n), "Q8_K activation row of {n}");
    out.copy_from_slice(a);
}

/// The K-quant tiles' activation rows: Q8_K as quantized.
const Q8K_ACT: Packer = Packer {
    row_bytes: q8k_bytes,
    pack: q8k_copy,
};

/// Checks a repack call and zeroes the tile when rows are missing.
fn check_repack(n: usize, ty: GgmlType, rows: &[&[u8]], tile: &mut [u8], tile_bytes: usize) {
    assert!(rows.len() <= TILE_ROWS, "{} rows in a tile", rows.len());
    assert_eq!(tile.len(), tile_bytes, "tile of {n}");
    for r in rows {
        assert_eq!(ty.row_bytes(n), Some(r.len()), "{ty} weight row of {n}");
    }
    if rows.len() < TILE_ROWS {
        tile.fill(0);
    }
}

/// Splits eight bytes into their low and high nibbles, each as eight bytes (two u32 groups).
fn nibbles(x: u64) -> (u64, u64) {
    const NIB: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    (x & NIB, (x >> 4) & NIB)
}
