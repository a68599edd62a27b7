//! The tensor types, one file per type: each owns its block layout (every byte offset named
//! once), its encoder, its decoder and its scalar reference dot product, and declares them
//! through [`BlockType`]. [`traits`] maps every [`GgmlType`] to its entry by an exhaustive
//! match, so a type without a block file does not compile.
//!
//! The layouts are ggml's (`ggml-common.h`); the encoders reproduce ggml's bytes (see
//! [`crate::rounding`]) and the decoders and dot products its arithmetic. What the 32-element
//! types share is in `legacy`, what the K-quants share in `kquant` (and, for Q4_K and Q5_K,
//! `sub32`), what IQ4_NL and IQ4_XS share in `iq4`; the SIMD kernels read the layouts through the same constants and helpers.

pub(crate) mod float;
pub(crate) mod iq4;
pub(crate) mod iq4_nl;
pub(crate) mod iq4_xs;
pub(crate) mod kquant;
pub(crate) mod legacy;
pub(crate) mod q2_k;
pub(crate) mod q3_k;
pub(crate) mod q4_0;
pub(crate) mod q4_1;
pub(crate) mod q4_k;
pub(crate) mod q5_0;
pub(crate) mod q5_1;
pub(crate) mod q5_k;
pub(crate) mod q6_k;
pub(crate) mod q8_0;
pub(crate) mod q8_1;
pub(crate) mod q8_k;
pub(crate) mod sub32;

use crate::dot::DotFn;
use crate::float::{f16_bits_to_f32, f32_to_f16_bits};
use llq_types::GgmlType;
use std::sync::OnceLock;

/// One tensor type: its layout facts, row encoder and decoder, and scalar dot product.
pub(crate) trait BlockType {
    const TYPE: GgmlType;
    /// Byte offsets in a block of the fp16 factors that scale the whole block linearly (`d`,
    /// and `dmin`, `m` or `s`): multiplying all of them by `g` multiplies every decoded value
    /// by `g`. Empty for the float types and Q8_K (whose `d` is an f32).
    const FACTORS: &'static [usize];
    /// Whether ggml's rounding of this type is steered by importance weights (an imatrix).
    const USES_IMPORTANCE: bool;
    /// The scalar reference dot product with a row of `TYPE.activation()`; `None` for the types
    /// that only ever hold activations.
    const DOT: Option<DotFn>;
    /// Encode a row of whole blocks into `dst` (sized by [`GgmlType::row_bytes`]), rounding as
    /// ggml does: steered by `importance` (one weight per column) where the type uses it.
    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>);
    /// Decode a row of whole blocks.
    fn dequantize_row(src: &[u8], dst: &mut [f32]);
    /// The levels `--quant-mode unbiased` starts from, before it rescales [`Self::FACTORS`]:
    /// ggml's weighted rounding unless the type refines it.
    fn quantize_row_unbiased(src: &[f32], dst: &mut [u8], importance: &[f32]) {
        Self::quantize_row(src, dst, Some(importance))
    }
    /// How [`crate::gptq`] re-rounds this type's blocks once their scales are fixed; `None`
    /// for the types whose levels are not affine in an integer code.
    const CODES: Option<Codes> = None;
}

/// The levels of a block whose scales are fixed, as affine functions of an integer code:
/// element `i` decodes to `zero[i] + step[i]·c` for a code `c` in `0..=max`. GPTQ keeps the
/// scales ggml's encoder chose and writes its own codes.
#[derive(Clone, Copy)]
pub(crate) struct Codes {
    pub max: u8,
    /// `map(block, zero, step)`: every element's map, from the block's stored scales.
    pub map: fn(&[u8], &mut [f32], &mut [f32]),
    /// `write(codes, block)`: store one code per element, leaving the scales as they are.
    pub write: fn(&[u8], &mut [u8]),
}

type QuantizeFn = fn(&[f32], &mut [u8], Option<&[f32]>);
type DequantizeFn = fn(&[u8], &mut [f32]);
type UnbiasedFn = fn(&[f32], &mut [u8], &[f32]);

/// A type's entry in the registry: its [`BlockType`] as values (ggml's `type_traits`).
#[derive(Clone, Copy)]
pub(crate) struct Traits {
    pub quantize: QuantizeFn,
    pub dequantize: DequantizeFn,
    pub quantize_unbiased: UnbiasedFn,
    pub factors: &'static [usize],
    pub uses_importance: bool,
    pub dot: Option<DotFn>,
    pub codes: Option<Codes>,
}

/// The entry of `ty`, which `B` must implement (checked when the registry is compiled).
const fn entry<B: BlockType>(ty: GgmlType) -> Traits {
    assert!(
        B::TYPE as usize == ty as usize,
        "a type registered with another's block"
    );
    Traits {
        quantize: B::quantize_row,
        dequantize: B::dequantize_row,
        quantize_unbiased: B::quantize_row_unbiased,
        factors: B::FACTORS,
        uses_importance: B::USES_IMPORTANCE,
        dot: B::DOT,
        codes: B::CODES,
    }
}

/// The registry: every type's entry. No wildcard arm: a new [`GgmlType`] variant fails to
/// compile here until its block file exists (and an arm with another type's block fails too).
pub(crate) fn traits(ty: GgmlType) -> &'static Traits {
    use GgmlType as T;
    match ty {
        T::F32 => &const { entry::<float::F32>(T::F32) },
        T::F16 => &const { entry::<float::F16>(T::F16) },
        T::BF16 => &const { entry::<float::Bf16>(T::BF16) },
        T::Q4_0 => &const { entry::<q4_0::Q4_0>(T::Q4_0) },
        T::Q4_1 => &const { entry::<q4_1::Q4_1>(T::Q4_1) },
        T::Q5_0 => &const { entry::<q5_0::Q5_0>(T::Q5_0) },
        T::Q5_1 => &const { entry::<q5_1::Q5_1>(T::Q5_1) },
        T::Q8_0 => &const { entry::<q8_0::Q8_0>(T::Q8_0) },
        T::Q8_1 => &const { entry::<q8_1::Q8_1>(T::Q8_1) },
        T::Q2_K => &const { entry::<q2_k::Q2_K>(T::Q2_K) },
        T::Q3_K => &const { entry::<q3_k::Q3_K>(T::Q3_K) },
        T::Q4_K => &const { entry::<q4_k::Q4_K>(T::Q4_K) },
        T::Q5_K => &const { entry::<q5_k::Q5_K>(T::Q5_K) },
        T::Q6_K => &const { entry::<q6_k::Q6_K>(T::Q6_K) },
        T::Q8_K => &const { entry::<q8_k::Q8_K>(T::Q8_K) },
        T::IQ4_NL => &const { entry::<iq4_nl::IQ4_NL>(T::IQ4_NL) },
        T::IQ4_XS => &const { entry::<iq4_xs::IQ4_XS>(T::IQ4_XS) },
    }
}

/// Encode one row of `ty` (whole blocks; `dst` sized by [`GgmlType::row_bytes`]), rounding as
/// ggml does: steered by `importance` (one weight per column, from an imatrix) for the types
/// whose rounding uses it. Panics if the lengths disagree: callers check with
/// [`GgmlType::row_bytes`] first.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    (traits(ty).quantize)(src, dst, importance)
}

/// Decode one row of `ty`; same contract as [`quantize_row`].
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    assert_eq!(ty.row_bytes(dst.len()), Some(src.len()), "{ty} row size");
    (traits(ty).dequantize)(src, dst)
}

/// Byte offsets, within one block of `ty`, of the fp16 factors that scale the whole block
/// linearly (`d`, and `dmin`, `m` or `s`): multiplying all of them by `g` multiplies every
/// decoded value by `g`. Empty for the float types and Q8_K (whose `d` is an f32).
pub fn factor_offsets(ty: GgmlType) -> &'static [usize] {
    traits(ty).factors
}

/// Encode a row block by block: `encode` gets a block, its slice of the per-column importance
/// (if any) and the block's output bytes.
pub(crate) fn quantize_blocks<const N: usize>(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
    encode: impl Fn(&[f32; N], Option<&[f32; N]>, &mut [u8]),
) {
    debug_assert_eq!(ty.block_size(), N);
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    let blocks = src
        .chunks_exact(N)
        .zip(dst.chunks_exact_mut(ty.type_size()));
    match importance {
        None => {
            for (x, out) in blocks {
                encode(x.try_into().expect("chunks of N"), None, out);
            }
        }
        Some(w) => {
            assert_eq!(w.len(), src.len(), "{ty} importance length");
            for ((x, out), w) in blocks.zip(w.chunks_exact(N)) {
                let w = w.try_into().expect("chunks of N");
                encode(x.try_into().expect("chunks of N"), Some(w), out);
            }
        }
    }
}

/// Decode a row block by block: `decode` turns one stored block of `ty` into its `N` values.
pub(crate) fn dequantize_blocks<const N: usize>(
    ty: GgmlType,
    src: &[u8],
    dst: &mut [f32],
    decode: impl Fn(&[u8], &mut [f32; N]),
) {
    debug_assert_eq!(ty.block_size(), N);
    assert_eq!(ty.row_bytes(dst.len()), Some(src.len()), "{ty} row size");
    for (block, out) in src
        .chunks_exact(ty.type_size())
        .zip(dst.chunks_exact_mut(N))
    {
        decode(block, out.try_into().expect("chunks of N"));
    }
}

/// All 65536 fp16 values as f32 (256 KiB, built on first use): without F16C a table lookup is
/// far cheaper than converting bit by bit, as in ggml's scalar code.
fn f16_table() -> &'static [f32] {
    static T: OnceLock<Vec<f32>> = OnceLock::new();
    T.get_or_init(|| (0..=u16::MAX).map(f16_bits_to_f32).collect())
}

/// The little-endian fp16 at `b[at..]`, as f32.
#[inline]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_table()[usize::from(u16::from_le_bytes([b[at], b[at + 1]]))]
}

/// The little-endian f32 at `b[at..]`.
#[inline]
pub(crate) fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Signed bytes as i32, for the integer sums of the dot products.
#[inline]
pub(crate) fn i8s(b: &[u8]) -> impl Iterator<Item = i32> + '_ {
    b.iter().map(|&v| i32::from(v as i8))
}

/// Store `x` as fp16 at `b[at..]`, rounded to nearest even (ggml's `GGML_FP32_TO_FP16`).
/// Encoders that go on computing with the factor read it back with [`f16_at`]: ggml continues
/// with the value as stored.
#[inline]
pub(crate) fn write_f16(b: &mut [u8], at: usize, x: f32) {
    b[at..at + 2].copy_from_slice(&f32_to_f16_bits(x).to_le_bytes());
}

#[cfg(test)]
mod tests;
