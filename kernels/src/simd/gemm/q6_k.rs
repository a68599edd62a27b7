//! Tiles of Q6_K rows against Q8_K activations.
//!
//! A super-block of 256 levels (0..63, the unsigned operand of `vpdpbusd`; the value is
//! level − 32) in sixteen sub-blocks of 16 with signed 8-bit scales. Per token and
//! super-block, as the scalar code: `isum = Σ_j sc_j·Σ (q − 32)·y`, computed exactly as
//! `Σ_j sc_j·Σ q·y − 32·Σ_j sc_j·bsum_j` (the stored 16-element sums of the activations, two
//! sub-blocks per `vpdpwssd`), then `acc + (d·dy)·isum`.

use super::{check_repack, Q8K_ACT};
use crate::blocks::f16_at;
use crate::blocks::q6_k::{self, levels};
use crate::dot::{Gemm, TILE_ROWS};
use llq_types::GgmlType;

/// Offsets in one super-block of a tile: the rows' d as f32, the sub-block scales (`[j][row]`,
/// i32), the scales of sub-blocks 2i and 2i + 1 as two i16 in an i32 lane (`[i][row]`), then
/// the levels, four from each row in turn (`[group][row][4]`, 64 groups).
const D: usize = 0;
const SC: usize = D + 4 * TILE_ROWS;
const SC_PAIRS: usize = SC + 16 * 4 * TILE_ROWS;
const LEVELS: usize = SC_PAIRS + 8 * 4 * TILE_ROWS;
const TILE_SB: usize = LEVELS + 256 * TILE_ROWS;

fn tile_bytes(n: usize) -> usize {
    n / 256 * TILE_SB
}

pub(super) const Q6_K: Gemm = Gemm {
    weight: GgmlType::Q6_K,
    tile_bytes,
    repack,
    act: Q8K_ACT,
    run: x86::run,
};

fn repack(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    check_repack(n, GgmlType::Q6_K, rows, tile, tile_bytes(n));
    for (r, row) in rows.iter().enumerate() {
        let blocks = row.chunks_exact(GgmlType::Q6_K.type_size());
        for (b, t) in blocks.zip(tile.chunks_exact_mut(TILE_SB)) {
            let d = f16_at(b, q6_k::D);
            let lane = |at: usize, i: usize| at + 4 * TILE_ROWS * i + 4 * r;
            t[D + 4 * r..D + 4 * r + 4].copy_from_slice(&d.to_le_bytes());
            let sc = &b[q6_k::SC..q6_k::D];
            for (j, &s) in sc.iter().enumerate() {
                let at = lane(SC, j);
                t[at..at + 4].copy_from_slice(&i32::from(s as i8).to_le_bytes());
            }
            for (i, pair) in sc.chunks_exact(2).enumerate() {
                let at = lane(SC_PAIRS, i);
                let (s0, s1) = (i16::from(pair[0] as i8), i16::from(pair[1] as i8));
                t[at..at + 2].copy_from_slice(&s0.to_le_bytes());
                t[at + 2..at + 4].copy_from_slice(&s1.to_le_bytes());
            }
            for (g, q) in levels(b).chunks_exact(4).enumerate() {
                let at = lane(LEVELS, g);
                t[at..at + 4].copy_from_slice(q);
            }
        }
    }
}

mod x86 {
    use super::super::{bcast, blocks, ld, q8k_bytes, run_tile, store, Q8K_BLOCK};
    use super::{tile_bytes, D, LEVELS, SC, SC_PAIRS, TILE_SB};
    use crate::blocks::q8_k;
    use crate::dot::{TILE_ROWS, TILE_TOKENS};
    use std::arch::x86_64::*;

    run_tile!(tokens, tile_bytes, q8k_bytes);

    /// `T` Q8_K activation rows against one tile: one row per i32 lane; each sub-block's
    /// levels loaded once and used for every token.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn tokens<const T: usize>(tile: &[u8], acts: &[u8], out: &mut [[f32; TILE_ROWS]]) {
        let z = _mm512_setzero_si512();
        let mut acc = [_mm512_setzero_ps(); T];
        for (k, b) in tile.chunks_exact(TILE_SB).enumerate() {
            let y: [&[u8]; T] = blocks(acts, k, Q8K_BLOCK);
            let mut isum = [z; T];
            for j in 0..16 {
                let q: [__m512i; 4] = std::array::from_fn(|g| ld(&b[LEVELS + 64 * (4 * j + g)..]));
                let sc = ld(&b[SC + 64 * j..]);
                for (y, isum) in y.iter().zip(isum.iter_mut()) {
                    let at = q8_k::QS + 16 * j;
                    let s0 = _mm512_dpbusd_epi32(z, q[0], bcast(y, at));
                    let s0 = _mm512_dpbusd_epi32(s0, q[1], bcast(y, at + 4));
                    let s1 = _mm512_dpbusd_epi32(z, q[2], bcast(y, at + 8));
                    let s1 = _mm512_dpbusd_epi32(s1, q[3], bcast(y, at + 12));
                    let s = _mm512_add_epi32(s0, s1);
                    *isum = _mm512_add_epi32(*isum, _mm512_mullo_epi32(s, sc));
                }
            }
            let pairs: [__m512i; 8] = std::array::from_fn(|i| ld(&b[SC_PAIRS + 64 * i..]));
            let d = _mm512_castsi512_ps(ld(&b[D..]));
            for ((y, isum), acc) in y.iter().zip(isum).zip(acc.iter_mut()) {
                let mut off = z;
                for (i, p) in pairs.iter().enumerate() {
                    off = _mm512_dpwssd_epi32(off, *p, bcast(y, q8_k::BSUMS + 4 * i));
                }
                let isum = _mm512_sub_epi32(isum, _mm512_slli_epi32::<5>(off));
                let dy = _mm512_castsi512_ps(bcast(y, q8_k::D));
                let v = _mm512_mul_ps(_mm512_mul_ps(d, dy), _mm512_cvtepi32_ps(isum));
                *acc = _mm512_add_ps(*acc, v);
            }
        }
        store(acc, out);
    }
}
