//! Tiles of Q4_K rows against Q8_K activations.
//!
//! A super-block of 256 levels (0..15, the unsigned operand of `vpdpbusd`) in eight sub-blocks
//! of 32, each with a 6-bit scale and min. Per token and super-block, as the scalar code:
//! `isum = Σ_j sc_j·Σ q·y` and `msum = Σ_j m_j·bsum_j` (exact integers), then
//! `acc + ((d·dy)·isum − (dmin·dy)·msum)`. The activation rows are read as they are: the
//! stored pairs of 16-element sums meet each sub-block's min through one `vpdpwssd`.

use super::{check_repack, nibbles, Q8K_ACT};
use crate::blocks::sub32::{self, unpack_scale_min};
use crate::blocks::{f16_at, q4_k};
use crate::dot::{Gemm, TILE_ROWS};
use llq_types::GgmlType;

/// Offsets in one super-block of a tile: the rows' d and dmin as f32, the sub-block scales
/// (`[j][row]`, i32), the sub-block mins twice in an i32 lane (`[j][row]`, two i16), then the
/// levels, four from each row in turn (`[group][row][4]`, 64 groups).
const D: usize = 0;
const DMIN: usize = D + 4 * TILE_ROWS;
const SC: usize = DMIN + 4 * TILE_ROWS;
const MN: usize = SC + 8 * 4 * TILE_ROWS;
const LEVELS: usize = MN + 8 * 4 * TILE_ROWS;
const TILE_SB: usize = LEVELS + 256 * TILE_ROWS;

fn tile_bytes(n: usize) -> usize {
    n / 256 * TILE_SB
}

pub(super) const Q4_K: Gemm = Gemm {
    weight: GgmlType::Q4_K,
    tile_bytes,
    repack,
    act: Q8K_ACT,
    run: x86::run,
};

fn put(t: &mut [u8], at: usize, v: [u8; 4]) {
    t[at..at + 4].copy_from_slice(&v);
}

fn repack(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    check_repack(n, GgmlType::Q4_K, rows, tile, tile_bytes(n));
    for (r, row) in rows.iter().enumerate() {
        let blocks = row.chunks_exact(GgmlType::Q4_K.type_size());
        for (b, t) in blocks.zip(tile.chunks_exact_mut(TILE_SB)) {
            put(t, D + 4 * r, f16_at(b, sub32::D).to_le_bytes());
            put(t, DMIN + 4 * r, f16_at(b, sub32::DMIN).to_le_bytes());
            let (sc, mn) = unpack_scale_min(&b[sub32::SC..sub32::HEAD]);
            for j in 0..8 {
                let lane = 4 * TILE_ROWS * j + 4 * r;
                put(t, SC + lane, i32::from(sc[j]).to_le_bytes());
                put(t, MN + lane, [mn[j], 0, mn[j], 0]);
            }
            // Sub-blocks 2c and 2c + 1 are the low and high nibbles of qs[32c..32c + 32].
            let qs = &b[q4_k::QS..];
            for (c, chunk) in qs.chunks_exact(32).enumerate() {
                for (h, x) in chunk.chunks_exact(8).enumerate() {
                    let (lo, hi) = nibbles(u64::from_le_bytes(x.try_into().unwrap()));
                    for (j, v) in [(2 * c, lo), (2 * c + 1, hi)] {
                        for (k, v) in [v as u32, (v >> 32) as u32].into_iter().enumerate() {
                            let group = 8 * j + 2 * h + k;
                            put(t, LEVELS + 4 * TILE_ROWS * group + 4 * r, v.to_le_bytes());
                        }
                    }
                }
            }
        }
    }
}

mod x86 {
    use super::super::{bcast, blocks, ld, q8k_bytes, run_tile, store, Q8K_BLOCK};
    use super::{tile_bytes, D, DMIN, LEVELS, MN, SC, TILE_SB};
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
            for j in 0..8 {
                let q: [__m512i; 8] = std::array::from_fn(|g| ld(&b[LEVELS + 64 * (8 * j + g)..]));
                let sc = ld(&b[SC + 64 * j..]);
                for (y, isum) in y.iter().zip(isum.iter_mut()) {
                    let mut s0 = z;
                    let mut s1 = z;
                    for g in 0..4 {
                        let at = q8_k::QS + 32 * j + 4 * g;
                        s0 = _mm512_dpbusd_epi32(s0, q[g], bcast(y, at));
                        s1 = _mm512_dpbusd_epi32(s1, q[g + 4], bcast(y, at + 16));
                    }
                    let s = _mm512_add_epi32(s0, s1);
                    *isum = _mm512_add_epi32(*isum, _mm512_mullo_epi32(s, sc));
                }
            }
            let mn: [__m512i; 8] = std::array::from_fn(|j| ld(&b[MN + 64 * j..]));
            let d = _mm512_castsi512_ps(ld(&b[D..]));
            let dmin = _mm512_castsi512_ps(ld(&b[DMIN..]));
            for ((y, isum), acc) in y.iter().zip(isum).zip(acc.iter_mut()) {
                let mut msum = z;
                for (j, mn) in mn.iter().enumerate() {
                    msum = _mm512_dpwssd_epi32(msum, *mn, bcast(y, q8_k::BSUMS + 4 * j));
                }
                let dy = _mm512_castsi512_ps(bcast(y, q8_k::D));
                let v = _mm512_mul_ps(_mm512_mul_ps(d, dy), _mm512_cvtepi32_ps(isum));
                let m = _mm512_mul_ps(_mm512_mul_ps(dmin, dy), _mm512_cvtepi32_ps(msum));
                *acc = _mm512_add_ps(*acc, _mm512_sub_ps(v, m));
            }
        }
        store(acc, out);
    }
}
