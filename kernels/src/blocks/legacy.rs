//! What the legacy types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1) share: 32 elements per block, an
//! fp16 scale first, 4-bit levels packed two per byte (element j in the low nibble of byte j,
//! element j + 16 in the high nibble) with the Q5 types' fifth bits in a little-endian u32, the
//! row encoder with importance weights, and the scalar dot loop.

use super::{dequantize_blocks, quantize_blocks};
use crate::dot::check;
use crate::rounding::legacy::{affine_ref, affine_search, symmetric_ref};
use crate::rounding::make_qx_quants;
use crate::rounding::unbiased::refine_symmetric;
use llq_types::GgmlType;

/// Elements per block of every legacy type.
pub(crate) const QK: usize = 32;

pub(crate) type Block = [f32; QK];
/// Quantized levels of one block, unsigned (the zero point already added).
pub(crate) type Levels = [u8; QK];

/// Encode a row the way ggml's `quantize_<type>` does: the reference rounding `encode` without
/// importance (llama-quantize without an imatrix is byte-identical to `_ref`), otherwise
/// `encode_weighted` per block with weights `w_j = importance_j * sqrt(sigma2 + x_j^2)`,
/// sigma2 = mean(x^2) of the row.
fn quantize_row_with(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
    encode: impl Fn(&Block, &mut [u8]),
    encode_weighted: impl Fn(&Block, &Block, &mut [u8]),
) {
    let Some(importance) = importance else {
        return quantize_blocks(ty, src, dst, None, |x, _, out| encode(x, out));
    };
    // Summed serially in f32, as ggml does: a different order would change sigma2's last bits.
    let sum_x2 = src.iter().fold(0f32, |s, &x| s + x * x);
    let sigma2 = sum_x2 / src.len() as f32;
    quantize_blocks(ty, src, dst, Some(importance), |x, qw, out| {
        let qw = qw.expect("importance is given");
        let w: Block = std::array::from_fn(|j| qw[j] * (sigma2 + x[j] * x[j]).sqrt());
        encode_weighted(x, &w, out)
    })
}

/// The encoder of a symmetric type (Q4_0: `nmax` 8, Q5_0: 16), each block written by
/// `write(d, levels, out)`: ggml's reference rounding, or with importance its weighted search,
/// whose levels `refine` (`--quant-mode unbiased`, not ggml) then improves with
/// [`refine_symmetric`].
pub(super) fn quantize_symmetric(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
    (nmax, refine): (i32, bool),
    write: fn(f32, &Levels, &mut [u8]),
) {
    quantize_row_with(
        ty,
        src,
        dst,
        importance,
        |x, out| {
            let (d, levels) = symmetric_ref(x, nmax);
            write(d, &levels, out)
        },
        |x, w, out| {
            let mut levels = [0; QK];
            let mut d = make_qx_quants(nmax, x, Some(w), &mut levels);
            if refine {
                d = refine_symmetric(x, w, nmax, d, &mut levels);
            }
            write(d, &levels, out)
        },
    )
}

/// The encoder of an affine type (Q4_1: `nmax` 15, Q5_1: 31), each block written by
/// `write(d, m, levels, out)`: ggml's reference rounding, or with importance its weighted
/// search.
pub(super) fn quantize_affine(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
    nmax: i32,
    write: fn(f32, f32, &Levels, &mut [u8]),
) {
    quantize_row_with(
        ty,
        src,
        dst,
        importance,
        |x, out| {
            let (d, m, levels) = affine_ref(x, nmax);
            write(d, m, &levels, out)
        },
        |x, w, out| {
            let (d, m, levels) = affine_search(x, w, nmax);
            write(d, m, &levels, out)
        },
    )
}

/// GPTQ's map of a legacy block: one `zero` and `step` for all 32 elements.
pub(super) fn fill_map(zero: f32, step: f32, z: &mut [f32], s: &mut [f32]) {
    z.fill(zero);
    s.fill(step);
}

/// Write 32 levels as 16 bytes of nibbles. Bits above the fourth are dropped (the Q5 types
/// store them with [`fifth_bits`]).
#[inline]
pub(super) fn pack_nibbles(levels: &Levels, out: &mut [u8]) {
    let (lo, hi) = levels.split_at(QK / 2);
    for ((o, &a), &b) in out[..QK / 2].iter_mut().zip(lo).zip(hi) {
        *o = (a & 0x0F) | ((b & 0x0F) << 4);
    }
}

/// Bit j = the fifth bit of level j (the Q5 types' `qh`, stored little-endian).
#[inline]
pub(super) fn fifth_bits(levels: &Levels) -> [u8; 4] {
    let qh = levels
        .iter()
        .enumerate()
        .fold(0u32, |qh, (j, &l)| qh | (u32::from(l >> 4) & 1) << j);
    qh.to_le_bytes()
}

/// The 16 nibble bytes as pairs (level j, level j + 16), without fifth bits: the layout of
/// [`pack_nibbles`] in the order the dot products read it.
#[inline(always)]
pub(super) fn nibble_pairs(qs: &[u8]) -> impl Iterator<Item = (u8, u8)> + '_ {
    qs[..QK / 2].iter().map(|&q| (q & 0x0F, q >> 4))
}

/// The levels of a block from its 16 nibble bytes `qs` and, for the Q5 types, the 4 bytes of
/// fifth bits `qh` (the inverse of [`pack_nibbles`] and [`fifth_bits`]).
#[inline(always)]
pub(super) fn unpack_levels(qs: &[u8], qh: Option<&[u8]>) -> Levels {
    let mut levels = [0u8; QK];
    let (lo, hi) = levels.split_at_mut(QK / 2);
    for ((lo, hi), (a, b)) in lo.iter_mut().zip(hi).zip(nibble_pairs(qs)) {
        *lo = a;
        *hi = b;
    }
    if let Some(qh) = qh {
        let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
        for (j, l) in levels.iter_mut().enumerate() {
            *l |= (((h >> j) & 1) as u8) << 4;
        }
    }
    levels
}

/// Decode a symmetric type's block: `(level - zero) * d`.
pub(super) fn dequantize_symmetric(
    ty: GgmlType,
    src: &[u8],
    dst: &mut [f32],
    zero: i32,
    block: impl Fn(&[u8]) -> (f32, Levels),
) {
    dequantize_blocks(ty, src, dst, |b, out: &mut Block| {
        let (d, levels) = block(b);
        for (o, &l) in out.iter_mut().zip(&levels) {
            *o = (i32::from(l) - zero) as f32 * d;
        }
    })
}

/// Decode an affine type's block: `level * d + m` (two roundings, no fused multiply-add, as
/// ggml and numpy).
pub(super) fn dequantize_affine(
    ty: GgmlType,
    src: &[u8],
    dst: &mut [f32],
    block: impl Fn(&[u8]) -> (f32, f32, Levels),
) {
    dequantize_blocks(ty, src, dst, |b, out: &mut Block| {
        let (d, m, levels) = block(b);
        for (o, &l) in out.iter_mut().zip(&levels) {
            *o = f32::from(l) * d + m;
        }
    })
}

/// The scalar dot product of a row of `wt` blocks with a row of its activation type's blocks:
/// `block(x, y)` per pair of blocks, summed in f32 in block order. The types keep their integer
/// sum out of line (`#[inline(never)]`): inlined into this loop it was unrolled into scalar
/// code, up to three times slower than on its own, where it vectorizes.
#[inline]
pub(super) fn dot(
    n: usize,
    w: &[u8],
    a: &[u8],
    wt: GgmlType,
    block: impl Fn(&[u8], &[u8]) -> f32,
) -> f32 {
    let at = check(n, w, a, wt);
    let blocks = w
        .chunks_exact(wt.type_size())
        .zip(a.chunks_exact(at.type_size()));
    blocks.fold(0f32, |s, (x, y)| s + block(x, y))
}

#[cfg(test)]
pub(super) mod test_util {
    use crate::blocks::BlockType;
    use llq_testsupport::Rng;

    /// Quantize and decode rows at several scales (1e-3 puts d in f16's subnormal range); check
    /// each element's error against `bound(block, x)`, `block` being the 32 source values of x.
    pub fn check_round_trip<B: BlockType>(bound: impl Fn(&[f32], f32) -> f32, importance: bool) {
        for (seed, scale) in [(1u64, 1e-3f32), (2, 1.0), (3, 30.0), (4, 1e3)] {
            let x = Rng::new(seed).normals(256, scale);
            let qw: Vec<f32> = Rng::new(seed + 100)
                .normals(256, 1.0)
                .iter()
                .map(|v| v * v)
                .collect();
            let mut q = vec![0u8; B::TYPE.row_bytes(x.len()).unwrap()];
            B::quantize_row(&x, &mut q, importance.then_some(&qw[..]));
            let mut y = vec![0f32; x.len()];
            B::dequantize_row(&q, &mut y);
            for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
                for (&a, &r) in xb.iter().zip(yb) {
                    let b = bound(xb, a);
                    assert!((a - r).abs() <= b, "{} {a} -> {r}, bound {b}", B::TYPE);
                }
            }
        }
    }

    /// Largest |error| of storing `v` as f16: half an ulp, relative for normals (2^-11) and
    /// absolute in the subnormal range (2^-25).
    pub fn f16_err(v: f32) -> f32 {
        v.abs() * f32::powi(2.0, -11) + f32::powi(2.0, -25)
    }

    /// Error bound of a symmetric type with levels -nmax..nmax-1: half a step, except that the
    /// side opposite the absmax stops at (nmax-1) steps; plus the f16 rounding of d at the
    /// largest level. `weighted` allows the search's wider choice of scale (two steps).
    pub fn symmetric_bound(nmax: f32, weighted: bool) -> impl Fn(&[f32], f32) -> f32 {
        move |b, x| {
            let step = amax(b) / nmax;
            let rounding = if weighted {
                2.0 * step
            } else {
                (step / 2.0).max(x.abs() - (nmax - 1.0) * step)
            };
            rounding * 1.0001 + nmax * f16_err(step)
        }
    }

    /// Error bound of an affine type with levels 0..=nmax over [min, max]: half a step (two for
    /// the weighted search), plus the f16 rounding of d at the top level and of m.
    pub fn affine_bound(nmax: f32, weighted: bool) -> impl Fn(&[f32], f32) -> f32 {
        move |b, _| {
            let lo = b.iter().copied().fold(f32::MAX, f32::min);
            let hi = b.iter().copied().fold(f32::MIN, f32::max);
            let step = (hi - lo) / nmax;
            let rounding = if weighted { 2.0 * step } else { step / 2.0 };
            rounding * 1.0001 + nmax * f16_err(step) + f16_err(lo)
        }
    }

    /// Error bound of the 8-bit types: half a step plus the f16 rounding of d at level 127.
    pub fn q8_bound(b: &[f32], _: f32) -> f32 {
        let step = amax(b) / 127.0;
        step / 2.0 * 1.0001 + 127.0 * f16_err(step)
    }

    pub fn amax(x: &[f32]) -> f32 {
        x.iter().fold(0f32, |m, v| m.max(v.abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibbles_and_fifth_bits_round_trip() {
        let levels: Levels = std::array::from_fn(|j| (j as u8 * 7) % 32);
        let mut qs = [0u8; 16];
        pack_nibbles(&levels, &mut qs);
        let qh = fifth_bits(&levels);
        assert_eq!(unpack_levels(&qs, Some(&qh)), levels);
        // Level 1 is 7 and level 17 is 119 % 32 = 23, whose low nibble is 7.
        assert_eq!(qs[1], 0x77);
        assert_eq!(u32::from_le_bytes(qh) >> 17 & 1, 1);
    }
}
