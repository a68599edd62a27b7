//! Q8_1: 36 bytes per 32 values: fp16 d, fp16 s = d * sum(q), then 32 signed bytes; value = q * d.
//! ggml uses it for activations: `s` lets a dot product against Q4_1/Q5_1 weights add the
//! weights' offset `m * sum(x)` without another pass.

use super::q8_0::decode_q8;
use super::{dequantize_blocks, quantize_blocks, read_f16, write_f16};
use crate::codec::BlockCodec;
use crate::rounding::legacy::round_q8;
use llq_types::GgmlType;

pub struct Q8_1;

impl BlockCodec for Q8_1 {
    const TYPE: GgmlType = GgmlType::Q8_1;

    fn quantize_row(src: &[f32], dst: &mut [u8], _importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, |x, out| {
            let (d, qs) = round_q8(x);
            // The integer sum times the f32 d, rounded once to fp16 (ggml's `sum*d`).
            let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
            write_f16(d, out);
            write_f16(sum as f32 * d, &mut out[2..]);
            for (o, q) in out[4..].iter_mut().zip(qs) {
                *o = q as u8;
            }
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, out| {
            decode_q8(read_f16(b), &b[4..], out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::test_util::{amax, check_round_trip, normal_row, q8_bound};
    use crate::quant::Q8_0;

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q8_1>(q8_bound, false);
    }

    #[test]
    fn s_is_d_times_the_level_sum_and_levels_match_q8_0() {
        let x = normal_row(7, 128, 3.0);
        let mut q81 = vec![0u8; 4 * 36];
        Q8_1::quantize_row(&x, &mut q81, None);
        let mut q80 = vec![0u8; 4 * 34];
        Q8_0::quantize_row(&x, &mut q80, None);
        for (i, (b1, b0)) in q81.chunks(36).zip(q80.chunks(34)).enumerate() {
            assert_eq!(b1[..2], b0[..2], "same d");
            assert_eq!(b1[4..], b0[2..], "same levels");
            // s uses d before its fp16 rounding, which is not stored: recompute it.
            let d = amax(&x[32 * i..32 * (i + 1)]) / 127.0;
            let sum: i32 = b1[4..].iter().map(|&q| i32::from(q as i8)).sum();
            let s = u16::from_le_bytes([b1[2], b1[3]]);
            assert_eq!(s, crate::float::f32_to_f16_bits(sum as f32 * d));
        }
        let mut y = vec![0f32; 128];
        Q8_1::dequantize_row(&q81, &mut y);
        let mut y0 = vec![0f32; 128];
        Q8_0::dequantize_row(&q80, &mut y0);
        assert_eq!(y, y0);
    }
}
