//! Q8_0: 34 bytes per 32 values: fp16 d, then 32 signed bytes; value = q * d. Importance is
//! ignored, as in ggml: with 255 levels a weighted search gains nothing measurable.

use super::{dequantize_blocks, quantize_blocks, read_f16, write_f16, Block};
use crate::codec::BlockCodec;
use crate::rounding::legacy::round_q8;
use llq_types::GgmlType;

pub struct Q8_0;

/// Decode 32 signed bytes scaled by `d`.
pub(super) fn decode_q8(d: f32, qs: &[u8], out: &mut Block) {
    for (o, &q) in out.iter_mut().zip(qs) {
        *o = f32::from(q as i8) * d;
    }
}

impl BlockCodec for Q8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;

    fn quantize_row(src: &[f32], dst: &mut [u8], _importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, |x, out| {
            let (d, qs) = round_q8(x);
            write_f16(d, out);
            for (o, q) in out[2..].iter_mut().zip(qs) {
                *o = q as u8;
            }
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, out| {
            decode_q8(read_f16(b), &b[2..], out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::test_util::{check_round_trip, q8_bound};

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q8_0>(q8_bound, false);
    }
}
