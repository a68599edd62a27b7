//! The float types F32, F16 and BF16: one element per "block", little-endian. Each is dotted
//! with activations of its own type: products in f32, accumulated in f64 (ggml's `ggml_float`,
//! as its scalar `ggml_vec_dot_f16`).

use super::{f16_at, f32_at, BlockType};
use crate::dot::{check, DotFn};
use crate::float;
use llq_types::GgmlType;

pub(crate) struct F32;
pub(crate) struct F16;
pub(crate) struct Bf16;

impl BlockType for F32 {
    const TYPE: GgmlType = GgmlType::F32;
    const FACTORS: &'static [usize] = &[];
    const USES_IMPORTANCE: bool = false;
    const DOT: Option<DotFn> = Some(|n, w, a| dot(n, w, a, GgmlType::F32, |b| f32_at(b, 0)));

    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        float::f32_to_le(src, dst)
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        float::f32_from_le(src, dst)
    }
}

impl BlockType for F16 {
    const TYPE: GgmlType = GgmlType::F16;
    const FACTORS: &'static [usize] = &[];
    const USES_IMPORTANCE: bool = false;
    const DOT: Option<DotFn> = Some(|n, w, a| dot(n, w, a, GgmlType::F16, |b| f16_at(b, 0)));

    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        float::f32_to_f16(src, dst)
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        float::f16_to_f32(src, dst)
    }
}

impl BlockType for Bf16 {
    const TYPE: GgmlType = GgmlType::BF16;
    const FACTORS: &'static [usize] = &[];
    const USES_IMPORTANCE: bool = false;
    const DOT: Option<DotFn> = Some(|n, w, a| dot(n, w, a, GgmlType::BF16, bf16_at));

    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        float::f32_to_bf16(src, dst)
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        float::bf16_to_f32(src, dst)
    }
}

/// The little-endian bf16 at the start of `b`, as f32.
#[inline]
pub(crate) fn bf16_at(b: &[u8]) -> f32 {
    float::bf16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]))
}

/// Float rows: each product in f32, accumulated in f64.
#[inline(always)]
fn dot(n: usize, w: &[u8], a: &[u8], ty: GgmlType, get: impl Fn(&[u8]) -> f32) -> f32 {
    check(n, w, a, ty);
    let width = ty.type_size();
    let s = w
        .chunks_exact(width)
        .zip(a.chunks_exact(width))
        .fold(0f64, |s, (x, y)| s + f64::from(get(x) * get(y)));
    s as f32
}
