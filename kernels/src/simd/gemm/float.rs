//! Tiles of F16, BF16 and F32 rows against activations of the same type (as ggml pairs them).
//!
//! Both sides are widened to f32 once (the weights when the tile is repacked, the activations
//! when they are packed), then each column is one 16-lane FMA per token: the tile holds, per
//! column, the 16 rows' values. Unlike the quantized tiles this is not bit-identical to the
//! scalar reference, which adds its f32 products in f64 (ggml's `ggml_float`): here they are
//! fused into f32 partial sums (even and odd columns of blocks of 32) added into a total per
//! block. The error stays within the tolerances the SIMD float kernels are held to.
//!
//! One loop ([`float_tokens`]) for both widths: sixteen rows per 512-bit vector, or eight per
//! 256-bit vector over the two halves of a tile. Each row's operations are the same in both,
//! so the AVX2 and AVX-512 tiles give the same bits.

use super::check_repack;
use crate::blocks::dequantize_row;
use crate::dot::{Gemm, Packer, TILE_ROWS};
use llq_types::GgmlType;

/// Bytes of a tile: per column, the 16 rows' values as f32.
fn tile_bytes(n: usize) -> usize {
    n * 4 * TILE_ROWS
}

/// Bytes of a packed activation row: its values as f32.
fn act_bytes(n: usize) -> usize {
    n * 4
}

fn repack_with(ty: GgmlType, n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    check_repack(n, ty, rows, tile, tile_bytes(n));
    let mut row = vec![0f32; n];
    for (r, src) in rows.iter().enumerate() {
        dequantize_row(ty, src, &mut row);
        for (c, v) in row.iter().enumerate() {
            let at = 4 * (TILE_ROWS * c + r);
            tile[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
}

fn pack_with(ty: GgmlType, n: usize, a: &[u8], out: &mut [u8]) {
    assert_eq!(ty.row_bytes(n), Some(a.len()), "{ty} activation row of {n}");
    assert_eq!(out.len(), act_bytes(n), "packed activation row of {n}");
    let mut row = vec![0f32; n];
    dequantize_row(ty, a, &mut row);
    for (o, v) in out.chunks_exact_mut(4).zip(row) {
        o.copy_from_slice(&v.to_le_bytes());
    }
}

/// One [`Gemm`] per float type: the same kernel, its own decoder.
macro_rules! float_gemm {
    ($name:ident, $ty:expr, $repack:ident, $pack:ident) => {
        fn $repack(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
            repack_with($ty, n, rows, tile)
        }

        fn $pack(n: usize, a: &[u8], out: &mut [u8]) {
            pack_with($ty, n, a, out)
        }

        pub(super) const $name: Gemm = Gemm {
            weight: $ty,
            tile_bytes,
            repack: $repack,
            act: Packer {
                row_bytes: act_bytes,
                pack: $pack,
            },
            run: kernels::run_zmm,
        };
    };
}

float_gemm!(F16, GgmlType::F16, repack_f16, pack_f16);
float_gemm!(BF16, GgmlType::BF16, repack_bf16, pack_bf16);
float_gemm!(F32, GgmlType::F32, repack_f32, pack_f32);

/// The same tiles for a CPU with AVX2 and FMA (the AVX2 and AVX-VNNI tables).
pub(super) const F16_YMM: Gemm = Gemm {
    run: kernels::run_ymm,
    ..F16
};

pub(super) const BF16_YMM: Gemm = Gemm {
    run: kernels::run_ymm,
    ..BF16
};

pub(super) const F32_YMM: Gemm = Gemm {
    run: kernels::run_ymm,
    ..F32
};

mod kernels {
    use super::super::{run_tile, YMM_TOKENS};
    use super::{act_bytes, tile_bytes};
    use crate::dot::{TILE_ROWS, TILE_TOKENS};
    use std::arch::x86_64::*;

    run_tile!(run_zmm, tokens_zmm, tile_bytes, act_bytes, TILE_TOKENS);
    run_tile!(run_ymm, tokens_ymm, tile_bytes, act_bytes, YMM_TOKENS);

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn ld_zmm(s: &[u8]) -> __m512 {
        let s = &s[..64];
        // SAFETY: `s` holds 64 readable bytes; `loadu` has no alignment requirement.
        unsafe { _mm512_loadu_ps(s.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn bcast_zmm(s: &[u8], c: usize) -> __m512 {
        _mm512_set1_ps(f32::from_le_bytes(s[4 * c..4 * c + 4].try_into().unwrap()))
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn store_zmm(o: &mut [f32], v: __m512) {
        let o = &mut o[..16];
        // SAFETY: `o` is 16 writable f32; `storeu` has no alignment requirement.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn ld_ymm(s: &[u8]) -> __m256 {
        let s = &s[..32];
        // SAFETY: `s` holds 32 readable bytes; `loadu` has no alignment requirement.
        unsafe { _mm256_loadu_ps(s.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn bcast_ymm(s: &[u8], c: usize) -> __m256 {
        _mm256_set1_ps(f32::from_le_bytes(s[4 * c..4 * c + 4].try_into().unwrap()))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn store_ymm(o: &mut [f32], v: __m256) {
        let o = &mut o[..8];
        // SAFETY: `o` is 8 writable f32; `storeu` has no alignment requirement.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) }
    }

    /// `$tokens::<T>`: `T` f32 activation rows against one tile, `$lanes` rows per vector (one
    /// pass per group of rows): per column one FMA per token, into the even or odd partial sum
    /// of the column; every `BLOCK` columns both are added into the token's total (two-level
    /// summation: rounding error grows with the block length plus the number of blocks, not
    /// with the row length).
    macro_rules! float_tokens {
        ($tokens:ident, $features:literal, $lanes:expr, $zero:ident, $fmadd:ident, $add:ident,
         $ld:ident, $bcast:ident, $store:ident) => {
            #[target_feature(enable = $features)]
            fn $tokens<const T: usize>(tile: &[u8], acts: &[u8], out: &mut [[f32; TILE_ROWS]]) {
                const BLOCK: usize = 32;
                let row = acts.len() / T;
                let x: [&[u8]; T] = std::array::from_fn(|t| &acts[t * row..(t + 1) * row]);
                let z = $zero();
                let cols = tile.len() / (4 * TILE_ROWS);
                for part in 0..TILE_ROWS / $lanes {
                    let at = 4 * $lanes * part;
                    let mut acc = [z; T];
                    for c0 in (0..cols).step_by(BLOCK) {
                        let c1 = (c0 + BLOCK).min(cols);
                        let mut even = [z; T];
                        let mut odd = [z; T];
                        let mut c = c0;
                        while c + 1 < c1 {
                            let w0 = $ld(&tile[64 * c + at..]);
                            let w1 = $ld(&tile[64 * (c + 1) + at..]);
                            for t in 0..T {
                                even[t] = $fmadd(w0, $bcast(x[t], c), even[t]);
                                odd[t] = $fmadd(w1, $bcast(x[t], c + 1), odd[t]);
                            }
                            c += 2;
                        }
                        if c < c1 {
                            let w = $ld(&tile[64 * c + at..]);
                            for t in 0..T {
                                even[t] = $fmadd(w, $bcast(x[t], c), even[t]);
                            }
                        }
                        for t in 0..T {
                            acc[t] = $add(acc[t], $add(even[t], odd[t]));
                        }
                    }
                    for (o, acc) in out.iter_mut().zip(acc) {
                        $store(&mut o[$lanes * part..], acc);
                    }
                }
            }
        };
    }

    float_tokens!(
        tokens_zmm,
        "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
        16,
        _mm512_setzero_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        ld_zmm,
        bcast_zmm,
        store_zmm
    );
    float_tokens!(
        tokens_ymm,
        "avx2,fma,f16c",
        8,
        _mm256_setzero_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        ld_ymm,
        bcast_ymm,
        store_ymm
    );
}
