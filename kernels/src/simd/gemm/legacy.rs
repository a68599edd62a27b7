//! Tiles of Q4_0 and Q8_0 rows against Q8_0 activations.
//!
//! The weights' levels go in as the signed operand of `vpdpbusd` (Q4_0's nibbles − 8) and the
//! activations' as the unsigned one, stored + 128; the tile keeps 128·Σ levels of each row's
//! block to take that offset off again. Per row: `acc + (dw·dy)·isum`, as the scalar code.

use super::{check_repack, nibbles};
use crate::blocks::{f16_at, q4_0, q8_0};
use crate::dot::{Gemm, Packer, TILE_ROWS};
use llq_types::GgmlType;

/// Bytes of one block of a tile: the rows' f32 scales, their i32 offsets (128·Σ levels of each
/// row's block), then the levels as i8, four from each row in turn (`[group][row][4]`).
const TILE_BLOCK: usize = 4 * TILE_ROWS + 4 * TILE_ROWS + 32 * TILE_ROWS;

/// Bytes of one block of a packed activation row: the scale as f32, then the 32 levels + 128
/// as u8.
const ACT_BLOCK: usize = 4 + 32;

fn tile_bytes(n: usize) -> usize {
    n / 32 * TILE_BLOCK
}

fn act_bytes(n: usize) -> usize {
    n / 32 * ACT_BLOCK
}

const ACT: Packer = Packer {
    row_bytes: act_bytes,
    pack: pack_act,
};

pub(super) const Q4_0: Gemm = Gemm {
    weight: GgmlType::Q4_0,
    tile_bytes,
    repack: repack_q4_0,
    act: ACT,
    run: x86::run,
};

pub(super) const Q8_0: Gemm = Gemm {
    weight: GgmlType::Q8_0,
    tile_bytes,
    repack: repack_q8_0,
    act: ACT,
    run: x86::run,
};

/// One Q8_0 activation row of `n` elements into [`ACT_BLOCK`]s.
fn pack_act(n: usize, a: &[u8], out: &mut [u8]) {
    assert_eq!(
        GgmlType::Q8_0.row_bytes(n),
        Some(a.len()),
        "Q8_0 activation row of {n}"
    );
    assert_eq!(out.len(), act_bytes(n), "packed activation row of {n}");
    let blocks = a.chunks_exact(GgmlType::Q8_0.type_size());
    for (y, o) in blocks.zip(out.chunks_exact_mut(ACT_BLOCK)) {
        o[..4].copy_from_slice(&f16_at(y, q8_0::D).to_le_bytes());
        for (o, &q) in o[4..].iter_mut().zip(q8_0::qs(y)) {
            *o = q ^ 0x80;
        }
    }
}

/// One row's block as the tile holds it: its scale, its 32 levels as eight groups of four
/// bytes, and the sum of the levels.
struct Levels {
    d: f32,
    groups: [u32; 8],
    sum: i32,
}

/// Writes a tile block by block from each row's [`Levels`] (`levels(block_bytes)`).
fn repack_with(
    n: usize,
    ty: GgmlType,
    rows: &[&[u8]],
    tile: &mut [u8],
    levels: fn(&[u8]) -> Levels,
) {
    check_repack(n, ty, rows, tile, tile_bytes(n));
    for (r, row) in rows.iter().enumerate() {
        for (b, t) in row
            .chunks_exact(ty.type_size())
            .zip(tile.chunks_exact_mut(TILE_BLOCK))
        {
            let l = levels(b);
            let off = 4 * TILE_ROWS + 4 * r;
            t[4 * r..4 * r + 4].copy_from_slice(&l.d.to_le_bytes());
            t[off..off + 4].copy_from_slice(&(128 * l.sum).to_le_bytes());
            for (g, q) in l.groups.iter().enumerate() {
                let at = 8 * TILE_ROWS + 4 * TILE_ROWS * g + 4 * r;
                t[at..at + 4].copy_from_slice(&q.to_le_bytes());
            }
        }
    }
}

/// Q4_0: element `j` is the low nibble of byte `j`, element `j + 16` its high nibble; levels
/// are the nibbles − 8. Eight nibbles at a time in a u64: `n − 8` as a byte is the 4-bit
/// two's complement `n ^ 8`, sign-extended (bit 3 copied into bits 4..8).
fn levels_q4_0(b: &[u8]) -> Levels {
    const EIGHT: u64 = 0x0808_0808_0808_0808;
    let half = |i: usize| u64::from_le_bytes(b[q4_0::QS + 8 * i..][..8].try_into().unwrap());
    let (lo0, hi0) = nibbles(half(0));
    let (lo1, hi1) = nibbles(half(1));
    let nibs = [lo0, lo1, hi0, hi1];
    // Byte sums of nibbles (each ≤ 8·15) in the top byte.
    let sum: u64 = nibs
        .iter()
        .map(|&x| x.wrapping_mul(0x0101_0101_0101_0101) >> 56)
        .sum();
    let mut groups = [0u32; 8];
    for (i, &x) in nibs.iter().enumerate() {
        let m = x ^ EIGHT;
        let l = m | ((m & EIGHT) * 0x1e);
        groups[2 * i] = l as u32;
        groups[2 * i + 1] = (l >> 32) as u32;
    }
    Levels {
        d: f16_at(b, q4_0::D),
        groups,
        sum: sum as i32 - 8 * 32,
    }
}

fn levels_q8_0(b: &[u8]) -> Levels {
    let qs = q8_0::qs(b);
    Levels {
        d: f16_at(b, q8_0::D),
        groups: std::array::from_fn(|g| {
            u32::from_le_bytes(qs[4 * g..4 * g + 4].try_into().unwrap())
        }),
        sum: qs.iter().map(|&q| i32::from(q as i8)).sum(),
    }
}

fn repack_q4_0(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    repack_with(n, GgmlType::Q4_0, rows, tile, levels_q4_0)
}

fn repack_q8_0(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    repack_with(n, GgmlType::Q8_0, rows, tile, levels_q8_0)
}

mod x86 {
    use super::super::{bcast, ld, run_tile, store};
    use super::{act_bytes, tile_bytes, ACT_BLOCK, TILE_BLOCK};
    use crate::dot::{TILE_ROWS, TILE_TOKENS};
    use std::arch::x86_64::*;

    run_tile!(tokens, tile_bytes, act_bytes);

    /// `T` packed activation rows against one tile: one row per i32 lane, the levels of each
    /// block loaded once and used for every token.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn tokens<const T: usize>(tile: &[u8], acts: &[u8], out: &mut [[f32; TILE_ROWS]]) {
        const LEVELS: usize = 8 * TILE_ROWS;
        let row = acts.len() / T;
        let mut acc = [_mm512_setzero_ps(); T];
        for (k, b) in tile.chunks_exact(TILE_BLOCK).enumerate() {
            let dw = _mm512_castsi512_ps(ld(b));
            let off = ld(&b[4 * TILE_ROWS..]);
            let q: [__m512i; 8] = std::array::from_fn(|g| ld(&b[LEVELS + 64 * g..]));
            // Sliced here rather than through `blocks` up front: that made this loop 31 %
            // slower (537 -> 368 GFLOP/s at 512 tokens), the K-quant loops are unaffected.
            for (t, acc) in acc.iter_mut().enumerate() {
                let y = &acts[t * row + k * ACT_BLOCK..t * row + (k + 1) * ACT_BLOCK];
                let z = _mm512_setzero_si512();
                let mut s0 = z;
                let mut s1 = z;
                for g in 0..4 {
                    s0 = _mm512_dpbusd_epi32(s0, bcast(y, 4 + 4 * g), q[g]);
                    s1 = _mm512_dpbusd_epi32(s1, bcast(y, 20 + 4 * g), q[g + 4]);
                }
                let isum = _mm512_sub_epi32(_mm512_add_epi32(s0, s1), off);
                let dy = _mm512_castsi512_ps(bcast(y, 0));
                let p = _mm512_mul_ps(_mm512_mul_ps(dw, dy), _mm512_cvtepi32_ps(isum));
                *acc = _mm512_add_ps(*acc, p);
            }
        }
        store(acc, out);
    }
}
