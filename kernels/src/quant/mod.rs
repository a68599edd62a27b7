//! The legacy ggml block formats (Q8_0, Q8_1, Q4_0, Q4_1, Q5_0, Q5_1): 32 elements per block with
//! one fp16 scale, plus an fp16 offset in the `_1` types. Each type has its own file; the layout
//! helpers they share live here, their rounding rules in [`crate::rounding::legacy`].
//!
//! Bit-exactness with ggml's `quantize_row_*_ref` (and gguf-py, which mirrors it) is the contract:
//! every step is done in f32 in ggml's order, Rust never fuses a multiply-add, and the reciprocal of
//! the scale is taken once and multiplied, as ggml does.

mod q4_0;
mod q4_1;
mod q5_0;
mod q5_1;
mod q8_0;
mod q8_1;

pub use q4_0::Q4_0;
pub use q4_1::Q4_1;
pub use q5_0::Q5_0;
pub use q5_1::Q5_1;
pub use q8_0::Q8_0;
pub use q8_1::Q8_1;

use crate::codec::dequantize_blocks;
use crate::float::{f16_bits_to_f32, f32_to_f16_bits};
use crate::rounding::make_qx_quants;
use crate::rounding::unbiased::refine_symmetric;
use llq_types::GgmlType;

/// Elements per block of every legacy type.
pub(crate) const QK: usize = 32;

pub(crate) type Block = [f32; QK];
/// Quantized levels of one block, unsigned (the zero point already added).
pub(crate) type Levels = [u8; QK];

/// Encode a row block by block with `encode`.
fn quantize_blocks(ty: GgmlType, src: &[f32], dst: &mut [u8], encode: impl Fn(&Block, &mut [u8])) {
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    for (x, out) in src
        .chunks_exact(QK)
        .zip(dst.chunks_exact_mut(ty.type_size()))
    {
        encode(x.try_into().unwrap(), out);
    }
}

/// Encode a row the way ggml's `quantize_<type>` does: the reference rounding without importance
/// (llama-quantize without an imatrix is byte-identical to `_ref`), otherwise a weighted search
/// per block with weights `w_j = importance_j * sqrt(sigma2 + x_j^2)`, sigma2 = mean(x^2) of the row.
fn quantize_row_with(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
    encode: impl Fn(&Block, &mut [u8]),
    encode_weighted: impl Fn(&Block, &Block, &mut [u8]),
) {
    let Some(importance) = importance else {
        return quantize_blocks(ty, src, dst, encode);
    };
    assert_eq!(importance.len(), src.len(), "{ty} importance length");
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    // Summed serially in f32, as ggml does: a different order would change sigma2's last bits.
    let sum_x2 = src.iter().fold(0f32, |s, &x| s + x * x);
    let sigma2 = sum_x2 / src.len() as f32;
    let blocks = src.chunks_exact(QK).zip(importance.chunks_exact(QK));
    for ((x, qw), out) in blocks.zip(dst.chunks_exact_mut(ty.type_size())) {
        let x: &Block = x.try_into().unwrap();
        let w: Block = std::array::from_fn(|j| qw[j] * (sigma2 + x[j] * x[j]).sqrt());
        encode_weighted(x, &w, out);
    }
}

/// `--quant-mode unbiased` for a symmetric type (Q4_0: `nmax` 8, Q5_0: 16): ggml's weighted
/// search, then [`refine_symmetric`], each block written by `write(d, levels, out)`. Needs
/// importance; the caller then rescales each block ([`crate::rounding::unbiased`]).
fn quantize_row_refined(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    importance: &[f32],
    nmax: i32,
    write: fn(f32, &Levels, &mut [u8]),
) {
    quantize_row_with(
        ty,
        src,
        dst,
        Some(importance),
        |_, _| unreachable!("importance is given"),
        |x, w, out| {
            let mut levels = [0; QK];
            let d = make_qx_quants(nmax, x, Some(w), &mut levels);
            let d = refine_symmetric(x, w, nmax, d, &mut levels);
            write(d, &levels, out)
        },
    )
}

/// Write 32 levels as 16 bytes: byte j holds level j in its low nibble and level j+16 in its high
/// nibble. Bits above the fourth are dropped (Q5 types store them with [`fifth_bits`]).
#[inline]
fn pack_nibbles(levels: &Levels, out: &mut [u8]) {
    let (lo, hi) = levels.split_at(QK / 2);
    for ((o, &a), &b) in out[..QK / 2].iter_mut().zip(lo).zip(hi) {
        *o = (a & 0x0F) | ((b & 0x0F) << 4);
    }
}

/// Bit j = the fifth bit of level j (the Q5 types' `qh`, stored little-endian).
#[inline]
fn fifth_bits(levels: &Levels) -> u32 {
    levels
        .iter()
        .enumerate()
        .fold(0, |qh, (j, &l)| qh | (u32::from(l >> 4) & 1) << j)
}

/// Inverse of [`pack_nibbles`] plus [`fifth_bits`] (`qh` = 0 for the 4-bit types).
#[inline]
fn unpack_levels(qs: &[u8], qh: u32) -> Levels {
    std::array::from_fn(|j| {
        let byte = qs[j % (QK / 2)];
        let nibble = if j < QK / 2 { byte & 0x0F } else { byte >> 4 };
        nibble | (((qh >> j) & 1) as u8) << 4
    })
}

#[inline]
fn read_f16(bytes: &[u8]) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([bytes[0], bytes[1]]))
}

/// Store `x` as fp16 (round to nearest even, as ggml's `GGML_FP32_TO_FP16`).
#[inline]
fn write_f16(x: f32, out: &mut [u8]) {
    out[..2].copy_from_slice(&f32_to_f16_bits(x).to_le_bytes());
}

/// `(level - zero) * d`, the decoding of symmetric levels.
#[inline]
fn decode_symmetric(d: f32, levels: &Levels, zero: i32, out: &mut Block) {
    for (o, &l) in out.iter_mut().zip(levels) {
        *o = (i32::from(l) - zero) as f32 * d;
    }
}

/// `level * d + m` (two roundings, no fused multiply-add, as ggml and numpy).
#[inline]
fn decode_affine(d: f32, m: f32, levels: &Levels, out: &mut Block) {
    for (o, &l) in out.iter_mut().zip(levels) {
        *o = f32::from(l) * d + m;
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::codec::BlockCodec;

    /// A small deterministic generator of roughly normal values (sum of uniforms).
    pub fn normal_row(seed: u64, n: usize, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        };
        (0..n)
            .map(|_| ((0..4).map(|_| uniform()).sum::<f32>() - 2.0) * 1.7 * scale)
            .collect()
    }

    /// Quantize and decode rows at several scales (1e-3 puts d in f16's subnormal range); check
    /// each element's error against `bound(block, x)`, `block` being the 32 source values of x.
    pub fn check_round_trip<C: BlockCodec>(bound: impl Fn(&[f32], f32) -> f32, importance: bool) {
        for (seed, scale) in [(1u64, 1e-3f32), (2, 1.0), (3, 30.0), (4, 1e3)] {
            let x = normal_row(seed, 256, scale);
            let qw: Vec<f32> = normal_row(seed + 100, 256, 1.0)
                .iter()
                .map(|v| v * v)
                .collect();
            let mut q = vec![0u8; C::TYPE.row_bytes(x.len()).unwrap()];
            C::quantize_row(&x, &mut q, importance.then_some(&qw[..]));
            let mut y = vec![0f32; x.len()];
            C::dequantize_row(&q, &mut y);
            for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
                for (&a, &r) in xb.iter().zip(yb) {
                    let b = bound(xb, a);
                    assert!((a - r).abs() <= b, "{} {a} -> {r}, bound {b}", C::TYPE);
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
        assert_eq!(unpack_levels(&qs, fifth_bits(&levels)), levels);
        // Level 1 is 7 and level 17 is 119 % 32 = 23, whose low nibble is 7.
        assert_eq!(qs[1], 0x77);
        assert_eq!(fifth_bits(&levels) >> 17 & 1, 1);
    }
}
