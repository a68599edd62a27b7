//! Register-tiled matmul for Q4_0 and Q8_0 weights (Q8_0 activations): many tokens against
//! weight rows repacked eight at a time.
//!
//! Why: a row-at-a-time kernel ends every block with a step across lanes (picking each block's
//! scale, and a final reduction) that costs about as much as the multiplies. Here each i32 lane
//! is one weight row: the eight rows' levels are interleaved four bytes at a time, so one
//! `vpdpbusd` against four broadcast activation bytes advances all eight rows, and a block's
//! scaling is a few vector operations per token for the eight rows together.
//!
//! The repack is done per tile of eight rows while the matmul runs, into a small buffer that is
//! then read for every token, so it costs one pass over the weights per matmul and the
//! memory-mapped weights are never copied as a whole.
//!
//! Results are bit-identical to the scalar reference (`super::scalar`): the same exact integer
//! block sums, and per row the same f32 operations in the same order, `acc + (dw·dy)·isum`
//! block after block (separate multiplies and add, no FMA).

use super::Packer;
use crate::float::f16_bits_to_f32;
use crate::types::GgmlType::{self, *};

/// Weight rows per repacked tile: one per i32 lane of a 512-bit vector.
pub const TILE_ROWS: usize = 16;

/// Tokens per kernel call at most (the accumulators stay in registers).
pub const TILE_TOKENS: usize = 8;

/// Bytes of one block of a tile: the rows' f32 scales, their i32 offsets (128·Σ levels of each
/// row's block), then the levels as i8, four from each row in turn (`[group][row][4]`).
const TILE_BLOCK: usize = 4 * TILE_ROWS + 4 * TILE_ROWS + 32 * TILE_ROWS;

/// Bytes of one block of a packed activation row: the scale as f32, then the 32 levels + 128
/// as u8 (so `vpdpbusd` can take them as its unsigned operand against the signed weights).
const ACT_BLOCK: usize = 4 + 32;

/// `run(n, tile, acts, out)` of a [`Gemm`].
pub type TileFn = fn(usize, &[u8], &[u8], &mut [[f32; TILE_ROWS]]);

/// The tiled kernel of one weight type: how to repack its rows and how to run a tile.
#[derive(Clone, Copy)]
pub struct Gemm {
    /// The weight type it is for.
    pub weight: GgmlType,
    /// `repack(n, rows, tile)`: up to [`TILE_ROWS`] weight rows into a tile of
    /// [`tile_bytes`]`(n)`; missing rows become zeros (scale 0, levels 0).
    pub repack: fn(usize, &[&[u8]], &mut [u8]),
    /// `run(n, tile, acts, out)`: `out[t][r]` = row `r` of the tile · packed activation row
    /// `t` of `acts` (`out.len()` ≤ [`TILE_TOKENS`] rows, contiguous in `acts`).
    pub run: TileFn,
}

impl Gemm {
    /// The activation packing this kernel reads ([`Packer`] over Q8_0 rows).
    pub fn packer(&self) -> Packer {
        Packer {
            row_bytes: act_bytes,
            pack: pack_act,
        }
    }
}

/// Bytes of a tile of [`TILE_ROWS`] rows of `n` elements.
pub fn tile_bytes(n: usize) -> usize {
    n / 32 * TILE_BLOCK
}

fn act_bytes(n: usize) -> usize {
    n / 32 * ACT_BLOCK
}

/// One Q8_0 activation row of `n` elements into [`ACT_BLOCK`]s.
fn pack_act(n: usize, a: &[u8], out: &mut [u8]) {
    assert_eq!(
        Q8_0.row_bytes(n),
        Some(a.len()),
        "Q8_0 activation row of {n}"
    );
    assert_eq!(out.len(), act_bytes(n), "packed activation row of {n}");
    for (y, o) in a.chunks_exact(34).zip(out.chunks_exact_mut(ACT_BLOCK)) {
        let d = f16_bits_to_f32(u16::from_le_bytes([y[0], y[1]]));
        o[..4].copy_from_slice(&d.to_le_bytes());
        for (o, &q) in o[4..].iter_mut().zip(&y[2..]) {
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
    assert!(rows.len() <= TILE_ROWS, "{} rows in a tile", rows.len());
    assert_eq!(tile.len(), tile_bytes(n), "tile of {n}");
    let bs = ty.type_size();
    for r in rows {
        assert_eq!(ty.row_bytes(n), Some(r.len()), "{ty} weight row of {n}");
    }
    if rows.len() < TILE_ROWS {
        tile.fill(0);
    }
    for (r, row) in rows.iter().enumerate() {
        for (b, t) in row.chunks_exact(bs).zip(tile.chunks_exact_mut(TILE_BLOCK)) {
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

fn scale(b: &[u8]) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]))
}

/// Q4_0: element `j` is the low nibble of byte `j`, element `j + 16` its high nibble; levels
/// are the nibbles − 8. Eight nibbles at a time in a u64: `n − 8` as a byte is the 4-bit
/// two's complement `n ^ 8`, sign-extended (bit 3 copied into bits 4..8).
fn levels_q4_0(b: &[u8]) -> Levels {
    const NIB: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    const EIGHT: u64 = 0x0808_0808_0808_0808;
    let half = |i: usize| u64::from_le_bytes(b[2 + 8 * i..10 + 8 * i].try_into().unwrap());
    let nibbles = [
        half(0) & NIB,
        half(1) & NIB,
        half(0) >> 4 & NIB,
        half(1) >> 4 & NIB,
    ];
    // Byte sums of nibbles (each ≤ 8·15) in the top byte.
    let sum: u64 = nibbles
        .iter()
        .map(|&x| x.wrapping_mul(0x0101_0101_0101_0101) >> 56)
        .sum();
    let mut groups = [0u32; 8];
    for (i, &x) in nibbles.iter().enumerate() {
        let m = x ^ EIGHT;
        let l = m | ((m & EIGHT) * 0x1e);
        groups[2 * i] = l as u32;
        groups[2 * i + 1] = (l >> 32) as u32;
    }
    Levels {
        d: scale(b),
        groups,
        sum: sum as i32 - 8 * 32,
    }
}

fn levels_q8_0(b: &[u8]) -> Levels {
    let qs = &b[2..34];
    Levels {
        d: scale(b),
        groups: std::array::from_fn(|g| {
            u32::from_le_bytes(qs[4 * g..4 * g + 4].try_into().unwrap())
        }),
        sum: qs.iter().map(|&q| i32::from(q as i8)).sum(),
    }
}

fn repack_q4_0(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    repack_with(n, Q4_0, rows, tile, levels_q4_0)
}

fn repack_q8_0(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    repack_with(n, Q8_0, rows, tile, levels_q8_0)
}

/// The tiled kernels, when this CPU has AVX-512 VL + VNNI (with AVX2).
#[cfg(target_arch = "x86_64")]
pub(super) fn kernels() -> [Gemm; 2] {
    [
        Gemm {
            weight: Q4_0,
            repack: repack_q4_0,
            run: x86::run,
        },
        Gemm {
            weight: Q8_0,
            repack: repack_q8_0,
            run: x86::run,
        },
    ]
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{act_bytes, tile_bytes, ACT_BLOCK, TILE_BLOCK, TILE_ROWS, TILE_TOKENS};
    use std::arch::x86_64::*;

    /// `run` of [`super::Gemm`]: checks the lengths, then enters the feature-enabled code.
    pub fn run(n: usize, tile: &[u8], acts: &[u8], out: &mut [[f32; TILE_ROWS]]) {
        assert_eq!(tile.len(), tile_bytes(n), "tile of {n}");
        assert!(out.len() <= TILE_TOKENS, "{} tokens in a call", out.len());
        assert_eq!(acts.len(), out.len() * act_bytes(n), "packed activations");
        // SAFETY: [`super::kernels`] is only installed by the AVX-512 table, which checked
        // that the CPU has AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C.
        unsafe {
            match out.len() {
                8 => tokens::<8>(tile, acts, out),
                7 => tokens::<7>(tile, acts, out),
                6 => tokens::<6>(tile, acts, out),
                5 => tokens::<5>(tile, acts, out),
                4 => tokens::<4>(tile, acts, out),
                3 => tokens::<3>(tile, acts, out),
                2 => tokens::<2>(tile, acts, out),
                1 => tokens::<1>(tile, acts, out),
                _ => {}
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn ld(s: &[u8]) -> __m512i {
        let s = &s[..64];
        // SAFETY: `s` holds 64 readable bytes; `loadu` has no alignment requirement.
        unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn bcast(s: &[u8; ACT_BLOCK], at: usize) -> __m512i {
        _mm512_set1_epi32(i32::from_le_bytes(s[at..at + 4].try_into().unwrap()))
    }

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
            for (t, acc) in acc.iter_mut().enumerate() {
                let at = t * row + k * ACT_BLOCK;
                let y: &[u8; ACT_BLOCK] = acts[at..at + ACT_BLOCK].try_into().unwrap();
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
        for (o, acc) in out.iter_mut().zip(acc) {
            // SAFETY: `o` is 16 writable f32; `storeu` has no alignment requirement.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr(), acc) }
        }
    }
}
