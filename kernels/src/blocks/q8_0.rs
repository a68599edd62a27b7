//! Q8_0: 32 values in 34 bytes: fp16 `d`, then 32 signed bytes; value = q·d. The activation type
//! of Q4_0, Q5_0 and Q8_0 weights. Importance is ignored, as in ggml: with 255 levels a weighted
//! search gains nothing measurable.

use super::legacy::{dot, fill_map, Block, QK};
use super::{dequantize_blocks, f16_at, i8s, quantize_blocks, write_f16, BlockType, Codes};
use crate::dot::DotFn;
use crate::rounding::legacy::round_q8;
use llq_types::GgmlType;

pub(crate) const D: usize = 0;
/// The 32 signed levels.
pub(crate) const QS: usize = 2;

pub(crate) struct Q8_0;

impl BlockType for Q8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const FACTORS: &'static [usize] = &[D];
    const USES_IMPORTANCE: bool = false;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], _importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, None, |x, _, out| {
            let (d, qs) = round_q8(x);
            write_f16(out, D, d);
            for (o, &q) in out[QS..QS + QK].iter_mut().zip(&qs) {
                *o = q as u8;
            }
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, out| {
            decode_q8(f16_at(b, D), &b[QS..], out)
        })
    }

    const CODES: Option<Codes> = Some(Codes {
        max: 2 * Q8_MAX as u8,
        map: code_map,
        write: write_codes,
    });
}

/// Largest level magnitude: ggml's levels are −127..=127 (never −128, which the SIMD dot
/// kernels' sign tricks cannot negate); GPTQ's code `c` is level `c − 127`.
const Q8_MAX: i32 = 127;

fn code_map(b: &[u8], zero: &mut [f32], step: &mut [f32]) {
    let d = f16_at(b, D);
    fill_map(-Q8_MAX as f32 * d, d, zero, step)
}

fn write_codes(codes: &[u8], out: &mut [u8]) {
    for (o, &c) in out[QS..QS + QK].iter_mut().zip(codes) {
        *o = (i32::from(c) - Q8_MAX) as i8 as u8;
    }
}

/// The 32 signed levels of a block (as bytes): the activations of the dot products.
#[inline]
pub(crate) fn qs(b: &[u8]) -> &[u8] {
    &b[QS..QS + QK]
}

/// Decode 32 signed bytes scaled by `d` (Q8_0 and Q8_1).
pub(super) fn decode_q8(d: f32, qs: &[u8], out: &mut Block) {
    for (o, &q) in out.iter_mut().zip(qs) {
        *o = f32::from(q as i8) * d;
    }
}

/// Σ x·y over two Q8_0 blocks: the exact integer part of the dot product.
// Out of line on purpose: see `legacy::dot`.
#[inline(never)]
fn isum(x: &[u8], y: &[u8]) -> i32 {
    i8s(qs(x)).zip(i8s(qs(y))).map(|(a, b)| a * b).sum()
}

fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::Q8_0, |x, y| {
        (f16_at(x, D) * f16_at(y, D)) * isum(x, y) as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::legacy::test_util::{check_round_trip, q8_bound};

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q8_0>(q8_bound, false);
    }
}
