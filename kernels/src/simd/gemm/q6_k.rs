//! Tiles of Q6_K rows against Q8_K activations.
//!
//! A super-block of 256 levels (0..63, the unsigned operand of `vpdpbusd`; the value is
//! level − 32) in sixteen sub-blocks of 16 with signed 8-bit scales. Per token and
//! super-block, as the scalar code: `isum = Σ_j sc_j·Σ (q − 32)·y`, computed exactly as
//! `Σ_j sc_j·Σ q·y − 32·Σ_j sc_j·bsum_j` (the stored 16-element sums of the activations, two
//! sub-blocks per `vpdpwssd`), then `acc + (d·dy)·isum`.
//!
//! AVX2: a pair sum of `vpmaddubsw` is at most 2·63·128 = 16128 in magnitude, so two groups add
//! up in i16 (≤ 32256) and `vpmaddwd` by the sub-block scale widens each two.

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
    run: zmm::run,
};

pub(super) const Q6_K_AVX2: Gemm = Gemm {
    run: ymm::run_avx2,
    ..Q6_K
};

pub(super) const Q6_K_VNNI: Gemm = Gemm {
    run: ymm::run_vnni,
    ..Q6_K
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

mod zmm {
    use super::super::{bcast, blocks, ld, q8k_bytes, run_tile, store, Q8K_BLOCK};
    use super::{tile_bytes, D, LEVELS, SC, SC_PAIRS, TILE_SB};
    use crate::blocks::q8_k;
    use crate::dot::{TILE_ROWS, TILE_TOKENS};
    use std::arch::x86_64::*;

    run_tile!(run, tokens, tile_bytes, q8k_bytes, TILE_TOKENS);

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

/// The 256-bit kernels: one loop ([`ymm_tokens`]) stamped out for AVX2 and AVX-VNNI, which
/// differ in how a sub-block's scaled sums are formed (`sub_*`) and how the scale pairs meet the
/// activations' sums (`offset_*`).
mod ymm {
    use super::super::{bcast8, q8k_bytes, run_tile, store8, twice16, Q8K_BLOCK, YMM_TOKENS};
    use super::{tile_bytes, D, LEVELS, SC, SC_PAIRS, TILE_SB};
    use crate::blocks::q8_k;
    use crate::dot::{TILE_ROWS, TILE_TOKENS};
    use crate::simd::avx2::ld256;
    use std::arch::x86_64::*;

    run_tile!(run_avx2, tokens_avx2, tile_bytes, q8k_bytes, YMM_TOKENS);
    run_tile!(run_vnni, tokens_vnni, tile_bytes, q8k_bytes, YMM_TOKENS);

    /// `sc·Σ q·y` over sub-block `j` (levels `q`, scale `sc` in both i16 halves of a lane): two
    /// groups at a time in i16 (module doc).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn sub_avx2(q: &[__m256i; 4], sc: __m256i, y: &[u8], j: usize) -> __m256i {
        let p = |g: usize| _mm256_maddubs_epi16(q[g], bcast8(y, q8_k::QS + 16 * j + 4 * g));
        let s0 = _mm256_madd_epi16(_mm256_add_epi16(p(0), p(1)), sc);
        let s1 = _mm256_madd_epi16(_mm256_add_epi16(p(2), p(3)), sc);
        _mm256_add_epi32(s0, s1)
    }

    /// `sc·Σ q·y` over sub-block `j` with `vpdpbusd` (scale `sc` as an i32 lane).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    fn sub_vnni(q: &[__m256i; 4], sc: __m256i, y: &[u8], j: usize) -> __m256i {
        let z = _mm256_setzero_si256();
        let at = q8_k::QS + 16 * j;
        let s0 = _mm256_dpbusd_avx_epi32(z, q[0], bcast8(y, at));
        let s0 = _mm256_dpbusd_avx_epi32(s0, q[1], bcast8(y, at + 4));
        let s1 = _mm256_dpbusd_avx_epi32(z, q[2], bcast8(y, at + 8));
        let s1 = _mm256_dpbusd_avx_epi32(s1, q[3], bcast8(y, at + 12));
        _mm256_mullo_epi32(_mm256_add_epi32(s0, s1), sc)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scales_avx2(sc: __m256i) -> __m256i {
        twice16(sc)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scales_vnni(sc: __m256i) -> __m256i {
        sc
    }

    /// `Σ_j sc_j·bsum_j` (the scales of sub-blocks 2i and 2i + 1 in each lane against the
    /// activations' sums of those sub-blocks).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn offset_avx2(pairs: &[__m256i; 8], y: &[u8]) -> __m256i {
        let p = |i: usize| _mm256_madd_epi16(pairs[i], bcast8(y, q8_k::BSUMS + 4 * i));
        let s0 = _mm256_add_epi32(_mm256_add_epi32(p(0), p(1)), _mm256_add_epi32(p(2), p(3)));
        let s1 = _mm256_add_epi32(_mm256_add_epi32(p(4), p(5)), _mm256_add_epi32(p(6), p(7)));
        _mm256_add_epi32(s0, s1)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    fn offset_vnni(pairs: &[__m256i; 8], y: &[u8]) -> __m256i {
        let mut s = _mm256_setzero_si256();
        for (i, p) in pairs.iter().enumerate() {
            s = _mm256_dpwssd_avx_epi32(s, *p, bcast8(y, q8_k::BSUMS + 4 * i));
        }
        s
    }

    /// `$tokens::<T>`: `T` Q8_K activation rows against one tile, eight rows at a time (one per
    /// i32 lane); each sub-block's levels loaded once per pass and used for every token.
    macro_rules! ymm_tokens {
        ($tokens:ident, $features:literal, $scales:ident, $sub:ident, $offset:ident) => {
            #[target_feature(enable = $features)]
            fn $tokens<const T: usize>(tile: &[u8], acts: &[u8], out: &mut [[f32; TILE_ROWS]]) {
                let row = acts.len() / T;
                let z = _mm256_setzero_si256();
                for half in 0..2 {
                    let h = 32 * half;
                    let mut acc = [_mm256_setzero_ps(); T];
                    for (k, b) in tile.chunks_exact(TILE_SB).enumerate() {
                        let y: [&[u8]; T] =
                            std::array::from_fn(|t| &acts[t * row + k * Q8K_BLOCK..][..Q8K_BLOCK]);
                        let mut isum = [z; T];
                        for j in 0..16 {
                            let q: [__m256i; 4] =
                                std::array::from_fn(|g| ld256(&b[LEVELS + 64 * (4 * j + g) + h..]));
                            let sc = $scales(ld256(&b[SC + 64 * j + h..]));
                            for (y, isum) in y.iter().zip(isum.iter_mut()) {
                                *isum = _mm256_add_epi32(*isum, $sub(&q, sc, y, j));
                            }
                        }
                        let pairs: [__m256i; 8] =
                            std::array::from_fn(|i| ld256(&b[SC_PAIRS + 64 * i + h..]));
                        let d = _mm256_castsi256_ps(ld256(&b[D + h..]));
                        for ((y, isum), acc) in y.iter().zip(isum).zip(acc.iter_mut()) {
                            let off = $offset(&pairs, y);
                            let isum = _mm256_sub_epi32(isum, _mm256_slli_epi32::<5>(off));
                            let dy = _mm256_castsi256_ps(bcast8(y, q8_k::D));
                            let v = _mm256_mul_ps(_mm256_mul_ps(d, dy), _mm256_cvtepi32_ps(isum));
                            *acc = _mm256_add_ps(*acc, v);
                        }
                    }
                    store8(acc, out, half);
                }
            }
        };
    }

    ymm_tokens!(
        tokens_avx2,
        "avx2,fma,f16c",
        scales_avx2,
        sub_avx2,
        offset_avx2
    );
    ymm_tokens!(
        tokens_vnni,
        "avx2,fma,f16c,avxvnni",
        scales_vnni,
        sub_vnni,
        offset_vnni
    );
}
