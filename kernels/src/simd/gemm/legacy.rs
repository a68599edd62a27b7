//! Tiles of Q4_0, Q8_0 and IQ4_NL rows against Q8_0 activations (IQ4_NL's table values are
//! signed bytes, so its tiles are Q8_0's with another repack).
//!
//! The weights' levels go in as the signed operand of `vpdpbusd` / `vpmaddubsw` (Q4_0's nibbles
//! − 8) and the activations' as the unsigned one, stored + 128; the tile keeps 128·Σ levels of
//! each row's block to take that offset off again. Per row: `acc + (dw·dy)·isum`, as the scalar
//! code.
//!
//! AVX2 (`vpmaddubsw`, whose i16 pair sums saturate): a Q4_0 product is at most 255·8 in
//! magnitude, so all eight groups of a block (16 pair sums of ≤ 2·255·8 = 4080 per i16 lane,
//! 8 of them: ≤ 32640) add up in i16 before one `vpmaddwd` widens them. A Q8_0 product (255·128)
//! would saturate even one pair, so the AVX2 Q8_0 tile takes its activations split into nibbles,
//! `y + 128 = 16·hi + lo` ([`pack_act_split`]): each half against the weights is ≤ 2·15·128 =
//! 3840 per pair, eight groups ≤ 30720, and `vpmaddwd` by 1 and by 16 recombines them exactly.

use super::{check_repack, nibbles};
use crate::blocks::{f16_at, iq4, iq4_nl, q4_0, q8_0};
use crate::dot::{Gemm, Packer, TILE_ROWS};
use llq_types::GgmlType;

/// Bytes of one block of a tile: the rows' f32 scales, their i32 offsets (128·Σ levels of each
/// row's block), then the levels as i8, four from each row in turn (`[group][row][4]`).
const TILE_BLOCK: usize = 4 * TILE_ROWS + 4 * TILE_ROWS + 32 * TILE_ROWS;

/// Bytes of one block of a packed activation row: the scale as f32, then the 32 levels + 128
/// as u8.
const ACT_BLOCK: usize = 4 + 32;

/// Bytes of one block of a split activation row (AVX2 Q8_0): the scale as f32, the low nibbles
/// of the 32 levels + 128, then their high nibbles.
const SPLIT_BLOCK: usize = 4 + 32 + 32;

fn tile_bytes(n: usize) -> usize {
    n / 32 * TILE_BLOCK
}

fn act_bytes(n: usize) -> usize {
    n / 32 * ACT_BLOCK
}

fn split_bytes(n: usize) -> usize {
    n / 32 * SPLIT_BLOCK
}

const ACT: Packer = Packer {
    row_bytes: act_bytes,
    pack: pack_act,
};

const SPLIT: Packer = Packer {
    row_bytes: split_bytes,
    pack: pack_act_split,
};

pub(super) const Q4_0: Gemm = Gemm {
    weight: GgmlType::Q4_0,
    tile_bytes,
    repack: repack_q4_0,
    act: ACT,
    run: zmm::run,
};

pub(super) const Q8_0: Gemm = Gemm {
    weight: GgmlType::Q8_0,
    tile_bytes,
    repack: repack_q8_0,
    act: ACT,
    run: zmm::run,
};

pub(super) const Q4_0_AVX2: Gemm = Gemm {
    run: ymm::run_q4_0,
    ..Q4_0
};

pub(super) const Q8_0_AVX2: Gemm = Gemm {
    act: SPLIT,
    run: ymm::run_q8_0,
    ..Q8_0
};

pub(super) const IQ4_NL: Gemm = Gemm {
    weight: GgmlType::IQ4_NL,
    repack: repack_iq4_nl,
    ..Q8_0
};

pub(super) const IQ4_NL_AVX2: Gemm = Gemm {
    weight: GgmlType::IQ4_NL,
    repack: repack_iq4_nl,
    ..Q8_0_AVX2
};

pub(super) const IQ4_NL_VNNI: Gemm = Gemm {
    weight: GgmlType::IQ4_NL,
    repack: repack_iq4_nl,
    ..Q8_0_VNNI
};

pub(super) const Q4_0_VNNI: Gemm = Gemm {
    run: ymm::run_vnni,
    ..Q4_0
};

pub(super) const Q8_0_VNNI: Gemm = Gemm {
    run: ymm::run_vnni,
    ..Q8_0
};

/// Calls `block(scale, levels + 128, out_block)` for each block of a Q8_0 activation row of
/// `n` elements, with `out` cut into blocks of `bytes`.
fn pack_with(n: usize, a: &[u8], out: &mut [u8], bytes: usize, block: fn(f32, &[u8], &mut [u8])) {
    assert_eq!(
        GgmlType::Q8_0.row_bytes(n),
        Some(a.len()),
        "Q8_0 activation row of {n}"
    );
    assert_eq!(out.len(), n / 32 * bytes, "packed activation row of {n}");
    let blocks = a.chunks_exact(GgmlType::Q8_0.type_size());
    for (y, o) in blocks.zip(out.chunks_exact_mut(bytes)) {
        let mut u = [0u8; 32];
        for (u, &q) in u.iter_mut().zip(q8_0::qs(y)) {
            *u = q ^ 0x80;
        }
        block(f16_at(y, q8_0::D), &u, o);
    }
}

/// One Q8_0 activation row of `n` elements into [`ACT_BLOCK`]s.
fn pack_act(n: usize, a: &[u8], out: &mut [u8]) {
    pack_with(n, a, out, ACT_BLOCK, |d, u, o| {
        o[..4].copy_from_slice(&d.to_le_bytes());
        o[4..].copy_from_slice(u);
    })
}

/// One Q8_0 activation row of `n` elements into [`SPLIT_BLOCK`]s.
fn pack_act_split(n: usize, a: &[u8], out: &mut [u8]) {
    pack_with(n, a, out, SPLIT_BLOCK, |d, u, o| {
        o[..4].copy_from_slice(&d.to_le_bytes());
        for (i, &u) in u.iter().enumerate() {
            o[4 + i] = u & 0x0f;
            o[36 + i] = u >> 4;
        }
    })
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

/// IQ4_NL: the table values of its nibbles, in element order, as Q8_0's levels.
fn levels_iq4_nl(b: &[u8]) -> Levels {
    let v = iq4::values(&b[iq4_nl::QS..]);
    Levels {
        d: f16_at(b, iq4_nl::D),
        groups: std::array::from_fn(|g| {
            u32::from_le_bytes(std::array::from_fn(|i| v[4 * g + i] as u8))
        }),
        sum: v.iter().map(|&x| i32::from(x)).sum(),
    }
}

fn repack_iq4_nl(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    repack_with(n, GgmlType::IQ4_NL, rows, tile, levels_iq4_nl)
}

fn repack_q4_0(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    repack_with(n, GgmlType::Q4_0, rows, tile, levels_q4_0)
}

fn repack_q8_0(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    repack_with(n, GgmlType::Q8_0, rows, tile, levels_q8_0)
}

/// Where the levels of a tile block start.
const LEVELS: usize = 8 * TILE_ROWS;

mod zmm {
    use super::super::{bcast, ld, run_tile, store};
    use super::{act_bytes, tile_bytes, ACT_BLOCK, LEVELS, TILE_BLOCK};
    use crate::dot::{TILE_ROWS, TILE_TOKENS};
    use std::arch::x86_64::*;

    run_tile!(run, tokens, tile_bytes, act_bytes, TILE_TOKENS);

    /// `T` packed activation rows against one tile: one row per i32 lane, the levels of each
    /// block loaded once and used for every token.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    fn tokens<const T: usize>(tile: &[u8], acts: &[u8], out: &mut [[f32; TILE_ROWS]]) {
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

/// The 256-bit kernels: one loop ([`ymm_tokens`]) stamped out for AVX2 Q4_0, AVX2 Q8_0 (split
/// activations) and AVX-VNNI (both types), which differ only in how a block's integer sums of
/// one token are formed (`isum_*`).
mod ymm {
    use super::super::{bcast8, run_tile, store8, YMM_TOKENS};
    use super::{act_bytes, split_bytes, tile_bytes, ACT_BLOCK, LEVELS, SPLIT_BLOCK, TILE_BLOCK};
    use crate::dot::{TILE_ROWS, TILE_TOKENS};
    use crate::simd::avx2::ld256;
    use std::arch::x86_64::*;

    run_tile!(run_q4_0, tokens_q4_0, tile_bytes, act_bytes, YMM_TOKENS);
    run_tile!(run_q8_0, tokens_q8_0, tile_bytes, split_bytes, YMM_TOKENS);
    run_tile!(run_vnni, tokens_vnni, tile_bytes, act_bytes, YMM_TOKENS);

    /// Σ over a block of q·(y + 128) for eight rows (Q4_0 levels, ≤ 8 in magnitude): see the
    /// module doc for why the eight groups may add up in i16.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn isum_q4_0(q: &[__m256i; 8], y: &[u8]) -> __m256i {
        let p = |g: usize| _mm256_maddubs_epi16(bcast8(y, 4 + 4 * g), q[g]);
        let s0 = _mm256_add_epi16(_mm256_add_epi16(p(0), p(1)), _mm256_add_epi16(p(2), p(3)));
        let s1 = _mm256_add_epi16(_mm256_add_epi16(p(4), p(5)), _mm256_add_epi16(p(6), p(7)));
        _mm256_madd_epi16(_mm256_add_epi16(s0, s1), _mm256_set1_epi16(1))
    }

    /// Σ over a block of q·(y + 128) for eight rows of Q8_0 levels, from the split activations
    /// `y + 128 = 16·hi + lo`: each nibble's eight groups add up in i16 (module doc).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn isum_q8_0(q: &[__m256i; 8], y: &[u8]) -> __m256i {
        let p = |at: usize, g: usize| _mm256_maddubs_epi16(bcast8(y, at + 4 * g), q[g]);
        let sum8 = |at: usize| {
            let s0 = _mm256_add_epi16(_mm256_add_epi16(p(at, 0), p(at, 1)), p(at, 2));
            let s1 = _mm256_add_epi16(_mm256_add_epi16(p(at, 3), p(at, 4)), p(at, 5));
            let s2 = _mm256_add_epi16(p(at, 6), p(at, 7));
            _mm256_add_epi16(_mm256_add_epi16(s0, s1), s2)
        };
        let lo = _mm256_madd_epi16(sum8(4), _mm256_set1_epi16(1));
        let hi = _mm256_madd_epi16(sum8(36), _mm256_set1_epi16(16));
        _mm256_add_epi32(lo, hi)
    }

    /// Σ over a block of q·(y + 128) for eight rows, with `vpdpbusd` (exact for any levels).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    fn isum_vnni(q: &[__m256i; 8], y: &[u8]) -> __m256i {
        let z = _mm256_setzero_si256();
        let mut s0 = z;
        let mut s1 = z;
        for g in 0..4 {
            s0 = _mm256_dpbusd_avx_epi32(s0, bcast8(y, 4 + 4 * g), q[g]);
            s1 = _mm256_dpbusd_avx_epi32(s1, bcast8(y, 20 + 4 * g), q[g + 4]);
        }
        _mm256_add_epi32(s0, s1)
    }

    /// `$tokens::<T>`: `T` packed activation rows (blocks of `$act_block` bytes, the scale first)
    /// against one tile, eight rows at a time (one per i32 lane): per block and token
    /// `acc + (dw·dy)·($isum − offset)`, the integer sums from `$isum(levels, activation block)`.
    macro_rules! ymm_tokens {
        ($tokens:ident, $features:literal, $act_block:expr, $isum:ident) => {
            #[target_feature(enable = $features)]
            fn $tokens<const T: usize>(tile: &[u8], acts: &[u8], out: &mut [[f32; TILE_ROWS]]) {
                let row = acts.len() / T;
                for half in 0..2 {
                    let h = 32 * half;
                    let mut acc = [_mm256_setzero_ps(); T];
                    for (k, b) in tile.chunks_exact(TILE_BLOCK).enumerate() {
                        let dw = _mm256_castsi256_ps(ld256(&b[h..]));
                        let off = ld256(&b[4 * TILE_ROWS + h..]);
                        let q: [__m256i; 8] =
                            std::array::from_fn(|g| ld256(&b[LEVELS + 64 * g + h..]));
                        for (t, acc) in acc.iter_mut().enumerate() {
                            let at = t * row + k * $act_block;
                            let y = &acts[at..at + $act_block];
                            let isum = _mm256_sub_epi32($isum(&q, y), off);
                            let dy = _mm256_castsi256_ps(bcast8(y, 0));
                            let p = _mm256_mul_ps(_mm256_mul_ps(dw, dy), _mm256_cvtepi32_ps(isum));
                            *acc = _mm256_add_ps(*acc, p);
                        }
                    }
                    store8(acc, out, half);
                }
            }
        };
    }

    ymm_tokens!(tokens_q4_0, "avx2,fma,f16c", ACT_BLOCK, isum_q4_0);
    ymm_tokens!(tokens_q8_0, "avx2,fma,f16c", SPLIT_BLOCK, isum_q8_0);
    ymm_tokens!(tokens_vnni, "avx2,fma,f16c,avxvnni", ACT_BLOCK, isum_vnni);
}
