//! Tiles of Q4_K and Q5_K rows against Q8_K activations (one layout: Q5_K's levels are
//! Q4_K's with a fifth bit).
//!
//! A super-block of 256 levels (0..15 or 0..31, the unsigned operand of `vpdpbusd` /
//! `vpmaddubsw`) in eight sub-blocks of 32, each with a 6-bit scale and min. Per token and
//! super-block, as the scalar code: `isum = Σ_j sc_j·Σ q·y` and `msum = Σ_j m_j·bsum_j` (exact
//! integers), then `acc + ((d·dy)·isum − (dmin·dy)·msum)`. The activation rows are read as they
//! are: the stored pairs of 16-element sums meet each sub-block's min through one `vpdpwssd`
//! (`vpmaddwd` on AVX2).
//!
//! AVX2: a pair sum of `vpmaddubsw` is at most 2·15·128 = 3840 (Q4_K) or 2·31·128 = 7936 (Q5_K)
//! in magnitude, so a sub-block's eight groups (Q4_K: ≤ 30720) or two halves of four (Q5_K:
//! ≤ 31744 each) add up in i16, and `vpmaddwd` by the sub-block scale (≤ 63) widens them.

use super::{check_repack, nibbles, Q8K_ACT};
use crate::blocks::sub32::{self, unpack_scale_min};
use crate::blocks::{f16_at, q4_k, q5_k};
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
    repack: repack_q4_k,
    act: Q8K_ACT,
    run: zmm::run,
};

/// `vpdpbusd` is exact for five-bit levels too: the same kernel as Q4_K.
pub(super) const Q5_K: Gemm = Gemm {
    weight: GgmlType::Q5_K,
    repack: repack_q5_k,
    ..Q4_K
};

pub(super) const Q4_K_AVX2: Gemm = Gemm {
    run: ymm::run_q4_k,
    ..Q4_K
};

pub(super) const Q5_K_AVX2: Gemm = Gemm {
    run: ymm::run_q5_k,
    ..Q5_K
};

pub(super) const Q4_K_VNNI: Gemm = Gemm {
    run: ymm::run_vnni,
    ..Q4_K
};

pub(super) const Q5_K_VNNI: Gemm = Gemm {
    run: ymm::run_vnni,
    ..Q5_K
};

fn put(t: &mut [u8], at: usize, v: [u8; 4]) {
    t[at..at + 4].copy_from_slice(&v);
}

fn repack_q4_k(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    repack(n, GgmlType::Q4_K, rows, tile)
}

fn repack_q5_k(n: usize, rows: &[&[u8]], tile: &mut [u8]) {
    repack(n, GgmlType::Q5_K, rows, tile)
}

/// Q4_K's and Q5_K's common head (d, dmin, packed scales and mins), the nibbles at `q4_k::QS` or
/// `q5_k::QS`, and for Q5_K the fifth bits: that of element `i` of sub-block `j` is bit `j` of
/// `qh[i]`.
fn repack(n: usize, ty: GgmlType, rows: &[&[u8]], tile: &mut [u8]) {
    check_repack(n, ty, rows, tile, tile_bytes(n));
    const LOW_BITS: u64 = 0x0101_0101_0101_0101;
    let five = ty == GgmlType::Q5_K;
    for (r, row) in rows.iter().enumerate() {
        let blocks = row.chunks_exact(ty.type_size());
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
            let qs = &b[if five { q5_k::QS } else { q4_k::QS }..][..128];
            let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
            for (c, chunk) in qs.chunks_exact(32).enumerate() {
                for (h, x) in chunk.chunks_exact(8).enumerate() {
                    let (lo, hi) = nibbles(u64::from_le_bytes(x.try_into().unwrap()));
                    for (j, mut v) in [(2 * c, lo), (2 * c + 1, hi)] {
                        if five {
                            v |= ((word(q5_k::QH + 8 * h) >> j) & LOW_BITS) << 4;
                        }
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

mod zmm {
    use super::super::{bcast, blocks, ld, q8k_bytes, run_tile, store, Q8K_BLOCK};
    use super::{tile_bytes, D, DMIN, LEVELS, MN, SC, TILE_SB};
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

/// The 256-bit kernels: one loop ([`ymm_tokens`]) stamped out for AVX2 Q4_K, AVX2 Q5_K and
/// AVX-VNNI (both types), which differ in how a sub-block's scaled sums are formed (`sub_*`)
/// and how the mins meet the activations' sums (`mins_*`).
mod ymm {
    use super::super::{bcast8, q8k_bytes, run_tile, store8, twice16, Q8K_BLOCK, YMM_TOKENS};
    use super::{tile_bytes, D, DMIN, LEVELS, MN, SC, TILE_SB};
    use crate::blocks::q8_k;
    use crate::dot::{TILE_ROWS, TILE_TOKENS};
    use crate::simd::avx2::ld256;
    use std::arch::x86_64::*;

    run_tile!(run_q4_k, tokens_q4_k, tile_bytes, q8k_bytes, YMM_TOKENS);
    run_tile!(run_q5_k, tokens_q5_k, tile_bytes, q8k_bytes, YMM_TOKENS);
    run_tile!(run_vnni, tokens_vnni, tile_bytes, q8k_bytes, YMM_TOKENS);

    /// `sc·Σ q·y` over sub-block `j` (levels `q`, scale `sc` in both i16 halves of a lane).
    /// Q4_K's eight groups add up in i16, Q5_K's in two halves of four (module doc).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn sub_avx2<const FIVE: bool>(q: &[__m256i; 8], sc: __m256i, y: &[u8], j: usize) -> __m256i {
        let p = |g: usize| _mm256_maddubs_epi16(q[g], bcast8(y, q8_k::QS + 32 * j + 4 * g));
        let s0 = _mm256_add_epi16(_mm256_add_epi16(p(0), p(1)), _mm256_add_epi16(p(2), p(3)));
        let s1 = _mm256_add_epi16(_mm256_add_epi16(p(4), p(5)), _mm256_add_epi16(p(6), p(7)));
        if FIVE {
            _mm256_add_epi32(_mm256_madd_epi16(s0, sc), _mm256_madd_epi16(s1, sc))
        } else {
            _mm256_madd_epi16(_mm256_add_epi16(s0, s1), sc)
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn sub_q4_k(q: &[__m256i; 8], sc: __m256i, y: &[u8], j: usize) -> __m256i {
        sub_avx2::<false>(q, sc, y, j)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn sub_q5_k(q: &[__m256i; 8], sc: __m256i, y: &[u8], j: usize) -> __m256i {
        sub_avx2::<true>(q, sc, y, j)
    }

    /// `sc·Σ q·y` over sub-block `j` with `vpdpbusd` (scale `sc` as an i32 lane).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    fn sub_vnni(q: &[__m256i; 8], sc: __m256i, y: &[u8], j: usize) -> __m256i {
        let z = _mm256_setzero_si256();
        let mut s0 = z;
        let mut s1 = z;
        for g in 0..4 {
            let at = q8_k::QS + 32 * j + 4 * g;
            s0 = _mm256_dpbusd_avx_epi32(s0, q[g], bcast8(y, at));
            s1 = _mm256_dpbusd_avx_epi32(s1, q[g + 4], bcast8(y, at + 16));
        }
        _mm256_mullo_epi32(_mm256_add_epi32(s0, s1), sc)
    }

    /// The scales as `sub_avx2` takes them: both i16 halves of each lane.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scales_avx2(sc: __m256i) -> __m256i {
        twice16(sc)
    }

    /// The scales as `sub_vnni` takes them: as stored.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scales_vnni(sc: __m256i) -> __m256i {
        sc
    }

    /// `Σ_j m_j·bsum_j` (the mins twice in each lane against the sub-blocks' pairs of sums).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn mins_avx2(mn: &[__m256i; 8], y: &[u8]) -> __m256i {
        let p = |j: usize| _mm256_madd_epi16(mn[j], bcast8(y, q8_k::BSUMS + 4 * j));
        let s0 = _mm256_add_epi32(_mm256_add_epi32(p(0), p(1)), _mm256_add_epi32(p(2), p(3)));
        let s1 = _mm256_add_epi32(_mm256_add_epi32(p(4), p(5)), _mm256_add_epi32(p(6), p(7)));
        _mm256_add_epi32(s0, s1)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    fn mins_vnni(mn: &[__m256i; 8], y: &[u8]) -> __m256i {
        let mut s = _mm256_setzero_si256();
        for (j, mn) in mn.iter().enumerate() {
            s = _mm256_dpwssd_avx_epi32(s, *mn, bcast8(y, q8_k::BSUMS + 4 * j));
        }
        s
    }

    /// `$tokens::<T>`: `T` Q8_K activation rows against one tile, eight rows at a time (one per
    /// i32 lane); each sub-block's levels loaded once per pass and used for every token.
    macro_rules! ymm_tokens {
        ($tokens:ident, $features:literal, $scales:ident, $sub:ident, $mins:ident) => {
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
                        for j in 0..8 {
                            let q: [__m256i; 8] =
                                std::array::from_fn(|g| ld256(&b[LEVELS + 64 * (8 * j + g) + h..]));
                            let sc = $scales(ld256(&b[SC + 64 * j + h..]));
                            for (y, isum) in y.iter().zip(isum.iter_mut()) {
                                *isum = _mm256_add_epi32(*isum, $sub(&q, sc, y, j));
                            }
                        }
                        let mn: [__m256i; 8] =
                            std::array::from_fn(|j| ld256(&b[MN + 64 * j + h..]));
                        let d = _mm256_castsi256_ps(ld256(&b[D + h..]));
                        let dmin = _mm256_castsi256_ps(ld256(&b[DMIN + h..]));
                        for ((y, isum), acc) in y.iter().zip(isum).zip(acc.iter_mut()) {
                            let msum = $mins(&mn, y);
                            let dy = _mm256_castsi256_ps(bcast8(y, q8_k::D));
                            let v = _mm256_mul_ps(_mm256_mul_ps(d, dy), _mm256_cvtepi32_ps(isum));
                            let m =
                                _mm256_mul_ps(_mm256_mul_ps(dmin, dy), _mm256_cvtepi32_ps(msum));
                            *acc = _mm256_add_ps(*acc, _mm256_sub_ps(v, m));
                        }
                    }
                    store8(acc, out, half);
                }
            }
        };
    }

    ymm_tokens!(
        tokens_q4_k,
        "avx2,fma,f16c",
        scales_avx2,
        sub_q4_k,
        mins_avx2
    );
    ymm_tokens!(
        tokens_q5_k,
        "avx2,fma,f16c",
        scales_avx2,
        sub_q5_k,
        mins_avx2
    );
    ymm_tokens!(
        tokens_vnni,
        "avx2,fma,f16c,avxvnni",
        scales_vnni,
        sub_vnni,
        mins_vnni
    );
}
