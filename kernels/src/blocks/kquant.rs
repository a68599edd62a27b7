//! What the K-quants (Q2_K ... Q6_K, and Q8_K for their activations) share: super-blocks of 256
//! elements split into sub-blocks of 16 or 32, each with a small integer scale (and min) that
//! is itself quantized against one or two fp16 super-block factors; the 2-bit level packing of
//! Q2_K and Q3_K; and the scalar dot loop against Q8_K.
//!
//! Bit-exactness with ggml is the contract: without importance weights an encoder matches
//! `quantize_row_qX_K_ref` (what llama-quantize runs without an imatrix), with them
//! `quantize_row_qX_K_impl`. The final levels are recomputed from the scales as stored (after
//! the fp16 and 6-bit rounding), never from the unrounded search results.

use super::{f16_at, f32_at, q8_k};
use crate::dot::check;
use llq_types::{GgmlType, QK_K};

/// One super-block of input.
pub(super) type SuperBlock = [f32; QK_K];
/// Quantized levels of one super-block, unsigned (any zero point already added).
pub(super) type Levels = [u8; QK_K];

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
