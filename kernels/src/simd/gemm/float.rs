//! Tiles of F16, BF16 and F32 rows against activations of the same type (as ggml pairs them).
//!
//! Both sides are widened to f32 once (the weights when the tile is repacked, the activations
//! when they are packed), then each column is one 16-lane FMA per token: the tile holds, per
//! column, the 16 rows' values. Unlike the quantized tiles this is not bit-identical to the
//! scalar reference, which adds its f32 products in f64 (ggml's `ggml_float`): here they are
//! fused into f32 partial sums (even and odd columns of blocks of 32) added into a total per
//! block. The error stays within the tolerances the SIMD float kernels are held to.

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
            run: x86::run,
        };
    };
}

float_gemm!(F16, GgmlType::F16, repack_f16, pack_f16);
float_gemm!(BF16, GgmlType::BF16, repack_bf16, pack_bf16);
float_gemm!(F32, GgmlType::F32, repack_f32, pack_f32);

mod x86 {
    use super::super::{run_tile, store};
    use super::{act_bytes, tile_bytes};
    use crate::dot::{TILE_ROWS, TILE_TOKENS};
    use std::arch::x86_64::*;

    run_tile!(tokens, tile_bytes, act_bytes);

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn ldps(s: &[u8]) -> __m512 {
        let s = &s[..64];
        // SAFETY: `s` holds 64 readable bytes; `loadu` has no alignment requirement.
        unsafe { _mm512_loadu_ps(s.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn bcast(s: &[u8], c: usize) -> __m512 {
        _mm512_set1_ps(f32::from_le_bytes(s[4 * c..4 * c + 4].try_into().unwrap()))
    }

    /// `T` f32 activation rows against one tile: per column one FMA per token, into the even
    /// or odd partial sum of the column; every [`BLOCK`] columns both are added into the
    /// token's total (two-level summation: rounding error grows with the block length plus
    /// the number of blocks, not with the row length).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn tokens<const T: usize>(tile: &[u8], acts: &[u8], out: &mut [[f32; TILE_ROWS]]) {
        const BLOCK: usize = 32;
        let row = acts.len() / T;
        let x: [&[u8]; T] = std::array::from_fn(|t| &acts[t * row..(t + 1) * row]);
        let z = _mm512_setzero_ps();
        let mut acc = [z; T];
        let cols = tile.len() / (4 * TILE_ROWS);
        for c0 in (0..cols).step_by(BLOCK) {
            let c1 = (c0 + BLOCK).min(cols);
            let mut even = [z; T];
            let mut odd = [z; T];
            let mut c = c0;
            while c + 1 < c1 {
                let w0 = ldps(&tile[64 * c..]);
                let w1 = ldps(&tile[64 * (c + 1)..]);
                for t in 0..T {
                    even[t] = _mm512_fmadd_ps(w0, bcast(x[t], c), even[t]);
                    odd[t] = _mm512_fmadd_ps(w1, bcast(x[t], c + 1), odd[t]);
                }
                c += 2;
            }
            if c < c1 {
                let w = ldps(&tile[64 * c..]);
                for t in 0..T {
                    even[t] = _mm512_fmadd_ps(w, bcast(x[t], c), even[t]);
                }
            }
            for t in 0..T {
                acc[t] = _mm512_add_ps(acc[t], _mm512_add_ps(even[t], odd[t]));
            }
        }
        store(acc, out);
    }
}
