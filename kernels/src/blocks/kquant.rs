//! What the K-quants (Q2_K ... Q6_K, and Q8_K for their activations) share: super-blocks of 256
//! elements split into sub-blocks of 16 or 32, each with a small integer scale (and min) that
//! is itself quantized against one or two fp16 super-block factors; the 2-bit level packing of
//! Q2_K and Q3_K; and the scalar dot loop against Q8_K.
//!
//! Bit-exactness with ggml is the contract: without importance weights an encoder matches
//! `quantize_row_qX_K_ref` (what llama-quantize runs without an imatrix), with them
//! `quantize_row_qX_K_impl`. The final levels are recomputed from the scales as stored (after
//! the fp16 and 6-bit rounding), never from the unrounded search results.
//!
//! Each encoder is a search per sub-block ([`Found`]) and a `write` per block. The searches run
//! on lanes ([`crate::rounding::lanes`]), one sub-block per lane, [`encode_lanes`] batching as
//! many blocks as fill the lanes, or one sub-block at a time in [`encode_reference`].

use super::{f16_at, f32_at, q8_k, quantize_blocks, BlockType};
use crate::dot::check;
use crate::rounding::{lanes, sum_squares};
use llq_types::{GgmlType, QK_K};

/// One super-block of input.
pub(super) type SuperBlock = [f32; QK_K];
/// Quantized levels of one super-block, unsigned (any zero point already added).
pub(super) type Levels = [u8; QK_K];

/// Most sub-blocks in a block (16 of 16 elements; Q4_K and Q5_K have 8 of 32).
pub(super) const MAX_SUBS: usize = 16;

/// What the sub-block searches of one block found, for each sub-block: scales and mins as the
/// searches left them (mins stay 0 for the symmetric types), the sums of the importance weights
/// (0 without importance), and levels.
pub(super) struct Found {
    pub scales: [f32; MAX_SUBS],
    pub mins: [f32; MAX_SUBS],
    pub sw: [f32; MAX_SUBS],
    pub levels: Levels,
}

impl Found {
    pub fn new() -> Self {
        Found {
            scales: [0.0; MAX_SUBS],
            mins: [0.0; MAX_SUBS],
            sw: [0.0; MAX_SUBS],
            levels: [0; QK_K],
        }
    }

    /// Fill the first `blocks` of `found` from lane results: lane `S·b + j` holds sub-block `j`
    /// of block `b`, with `S = 256 / N` sub-blocks of `N` per block.
    #[inline(always)]
    pub fn from_lanes<const L: usize, const N: usize>(
        found: &mut [Self],
        blocks: usize,
        (scales, mins, sw): (&[f32; L], &[f32; L], &[f32; L]),
        levels: &[[u8; L]; N],
    ) {
        let subs = QK_K / N;
        for (b, f) in found.iter_mut().enumerate().take(blocks) {
            let lanes = subs * b..subs * b + subs;
            f.scales[..subs].copy_from_slice(&scales[lanes.clone()]);
            f.mins[..subs].copy_from_slice(&mins[lanes.clone()]);
            f.sw[..subs].copy_from_slice(&sw[lanes]);
            lanes::scatter(levels, subs * b, &mut f.levels);
        }
    }
}

/// A K-quant encoder as a search per sub-block and a write per block.
pub(super) trait KQuant: BlockType {
    /// Sub-blocks per block.
    const SUBS: usize;
    /// The scalar searches of a block's sub-blocks.
    fn search(x: &SuperBlock, importance: Option<&SuperBlock>) -> Found;
    /// [`Self::search`] of each block of `x` (at most `L / SUBS`, at least one) into `found`,
    /// one sub-block per lane. Must be `#[inline(always)]` (see [`lanes::LaneEncoder`]).
    fn search_lanes<const L: usize>(x: &[f32], importance: Option<&[f32]>, found: &mut [Found]);
    /// Write a block from what its searches found.
    fn write(x: &SuperBlock, importance: Option<&SuperBlock>, found: &Found, out: &mut [u8]);
}

/// Encode a row block by block with the scalar searches.
pub(super) fn encode_reference<K: KQuant>(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
    quantize_blocks(K::TYPE, src, dst, importance, |x, w, out| {
        K::write(x, w, &K::search(x, w), out)
    })
}

/// Encode a row with `L`-lane searches, in batches of the `L / SUBS` blocks (at least one; the
/// last batch may be shorter) whose sub-blocks fill the lanes.
#[inline(always)]
pub(super) fn encode_lanes<const L: usize, K: KQuant>(
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
) {
    let ty = K::TYPE;
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    if let Some(w) = importance {
        assert_eq!(w.len(), src.len(), "{ty} importance length");
    }
    let per_batch = (L / K::SUBS).max(1);
    let mut found: Vec<Found> = (0..per_batch).map(|_| Found::new()).collect();
    let n = per_batch * QK_K;
    let batches = src
        .chunks(n)
        .zip(dst.chunks_mut(per_batch * ty.type_size()));
    for (i, (x, out)) in batches.enumerate() {
        let w = importance.map(|w| &w[i * n..i * n + x.len()]);
        K::search_lanes::<L>(x, w, &mut found);
        let blocks = x
            .chunks_exact(QK_K)
            .zip(out.chunks_exact_mut(ty.type_size()))
            .zip(&found)
            .enumerate();
        for (b, ((x, out), found)) in blocks {
            let w = w.map(|w| w[b * QK_K..][..QK_K].try_into().expect("a block"));
            K::write(x.try_into().expect("a block"), w, found, out);
        }
    }
}

impl<K: KQuant> lanes::LaneEncoder for K {
    #[inline(always)]
    fn encode<const L: usize>(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        encode_lanes::<L, K>(src, dst, importance)
    }

    fn reference(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        encode_reference::<K>(src, dst, importance)
    }
}

/// Each lane's block's `factor · Σx² / 256` (the σ² of the importance weights), the lanes
/// holding sub-blocks of `N` of the blocks of `x` (the padding lanes the last one's).
#[inline(always)]
pub(super) fn sigma2_lanes<const L: usize, const N: usize>(x: &[f32], factor: f32) -> [f32; L] {
    let mut per_block = [0f32; L];
    for (s, x) in per_block.iter_mut().zip(x.chunks_exact(QK_K)) {
        *s = factor * sum_squares(x) / QK_K as f32;
    }
    let groups = x.len() / N;
    lanes::each(|k| per_block[k.min(groups - 1) * N / QK_K])
}

/// Pack 2-bit levels as Q2_K and Q3_K store them: in each half of 128 elements, byte `l` holds
/// elements `l`, `l+32`, `l+64`, `l+96` from the low bits up. Levels are below 4 by construction.
pub(super) fn pack_2bit(levels: &Levels, qs: &mut [u8]) {
    for (half, q) in levels.chunks_exact(128).zip(qs.chunks_exact_mut(32)) {
        for (l, byte) in q.iter_mut().enumerate() {
            *byte = half[l] | (half[l + 32] << 2) | (half[l + 64] << 4) | (half[l + 96] << 6);
        }
    }
}

/// The 16 levels of sub-block `j` from what [`pack_2bit`] wrote: bits `2·((j/2)%4)` of the 16
/// bytes starting at `32·(j/8) + 16·(j%2)`.
#[inline(always)]
pub(super) fn unpack_2bit(qs: &[u8], j: usize) -> impl Iterator<Item = u8> + '_ {
    let shift = 2 * ((j / 2) % 4);
    qs[32 * (j / 8) + 16 * (j % 2)..][..16]
        .iter()
        .map(move |&q| (q >> shift) & 3)
}

/// A K-quant super-block against a Q8_K block: `(Σ_j sc_j·Σ q·y, Σ_j m_j·bsum_j)`, the scaled
/// level products and the min correction, both exact: the integer parts of the dot product,
/// which every SIMD kernel must equal. The block's value is `d·y.d·isum − dmin·y.d·msum`
/// (Q3_K and Q6_K have no min: `msum` = 0, their offset is inside `isum`).
pub(super) type KSums = (i32, i32);

/// The scalar dot product of a row of `wt` super-blocks with Q8_K activations: per block
/// `d·dy·isum − dmin·dy·msum` from `sums(x, y)`, with `d` the fp16 at `d_at` and `dmin` the one
/// at `dmin_at` (types without mins have none), summed in f32 in block order.
#[inline]
pub(super) fn dot(
    n: usize,
    w: &[u8],
    a: &[u8],
    wt: GgmlType,
    (d_at, dmin_at): (usize, Option<usize>),
    sums: fn(&[u8], &[u8]) -> KSums,
) -> f32 {
    let at = check(n, w, a, wt);
    let blocks = w
        .chunks_exact(wt.type_size())
        .zip(a.chunks_exact(at.type_size()));
    blocks.fold(0f32, |s, (x, y)| {
        let dy = f32_at(y, q8_k::D);
        let (isum, msum) = sums(x, y);
        let mut v = (f16_at(x, d_at) * dy) * isum as f32;
        if let Some(dmin_at) = dmin_at {
            v -= (f16_at(x, dmin_at) * dy) * msum as f32;
        }
        s + v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_bit_packing_round_trips() {
        let levels: Levels = std::array::from_fn(|i| ((i * 7 + i / 16) % 4) as u8);
        let mut qs = [0u8; 64];
        pack_2bit(&levels, &mut qs);
        for j in 0..16 {
            let got: Vec<u8> = unpack_2bit(&qs, j).collect();
            assert_eq!(got, levels[16 * j..16 * j + 16], "{j}");
        }
    }
}
