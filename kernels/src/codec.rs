//! One trait for every tensor type's encode/decode, and the run-time dispatch over [`GgmlType`].

use crate::float;
use llq_types::GgmlType;

/// Encode and decode rows of one tensor type. Row lengths are whole blocks; `dst` is sized by
/// [`GgmlType::row_bytes`]. `importance` (per-column weights from an imatrix) may steer the
/// rounding of types that use it; others ignore it.
pub trait BlockCodec {
    const TYPE: GgmlType;
    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>);
    fn dequantize_row(src: &[u8], dst: &mut [f32]);
}

type QuantizeFn = fn(&[f32], &mut [u8], Option<&[f32]>);
type DequantizeFn = fn(&[u8], &mut [f32]);

/// A type's entry in the dispatch table.
#[derive(Clone, Copy)]
pub struct Codec {
    pub ty: GgmlType,
    pub quantize: QuantizeFn,
    pub dequantize: DequantizeFn,
}

const fn entry<C: BlockCodec>() -> Codec {
    Codec {
        ty: C::TYPE,
        quantize: C::quantize_row,
        dequantize: C::dequantize_row,
    }
}

pub struct F32;
pub struct F16;
pub struct Bf16;

impl BlockCodec for F32 {
    const TYPE: GgmlType = GgmlType::F32;
    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        float::f32_to_le(src, dst)
    }
    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        float::f32_from_le(src, dst)
    }
}

impl BlockCodec for F16 {
    const TYPE: GgmlType = GgmlType::F16;
    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        float::f32_to_f16(src, dst)
    }
    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        float::f16_to_f32(src, dst)
    }
}

impl BlockCodec for Bf16 {
    const TYPE: GgmlType = GgmlType::BF16;
    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        float::f32_to_bf16(src, dst)
    }
    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        float::bf16_to_f32(src, dst)
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

/// Every type that can be written and read. Adding a type: one impl plus one row here.
const CODECS: &[Codec] = &[
    entry::<F32>(),
    entry::<F16>(),
    entry::<Bf16>(),
    entry::<crate::quant::Q8_0>(),
    entry::<crate::quant::Q8_1>(),
    entry::<crate::quant::Q4_0>(),
    entry::<crate::quant::Q4_1>(),
    entry::<crate::quant::Q5_0>(),
    entry::<crate::quant::Q5_1>(),
    entry::<crate::kquant::Q2_K>(),
    entry::<crate::kquant::Q3_K>(),
    entry::<crate::kquant::Q4_K>(),
    entry::<crate::kquant::Q5_K>(),
    entry::<crate::kquant::Q6_K>(),
    entry::<crate::kquant::Q8_K>(),
];

/// The codec of `ty`, or `None` when llq cannot encode that type.
pub fn codec(ty: GgmlType) -> Option<&'static Codec> {
    CODECS.iter().find(|c| c.ty == ty)
}

/// Encode one row of `ty`. Panics if `ty` has no codec or the lengths disagree: callers check
/// with [`codec`] and [`GgmlType::row_bytes`] first.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
    let c = codec(ty).unwrap_or_else(|| panic!("no codec for {ty}"));
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    (c.quantize)(src, dst, importance)
}

/// Decode one row of `ty`; same contract as [`quantize_row`].
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    let c = codec(ty).unwrap_or_else(|| panic!("no codec for {ty}"));
    assert_eq!(ty.row_bytes(dst.len()), Some(src.len()), "{ty} row size");
    (c.dequantize)(src, dst)
}
