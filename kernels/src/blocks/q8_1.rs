//! Q8_1: 32 values in 36 bytes: fp16 `d`, fp16 `s` = d·Σq, then 32 signed bytes; value = q·d.
//! The activation type of Q4_1 and Q5_1 weights: `s` lets their dot products add the weights'
//! offset `m·Σy` without another pass.

use super::legacy::QK;
use super::q8_0::decode_q8;
use super::{dequantize_blocks, f16_at, quantize_blocks, write_f16, BlockType};
use crate::dot::DotFn;
use crate::rounding::legacy::round_q8;
use llq_types::GgmlType;

pub(crate) const D: usize = 0;
pub(crate) const S: usize = 2;
/// The 32 signed levels.
pub(crate) const QS: usize = 4;

pub(crate) struct Q8_1;

impl BlockType for Q8_1 {
    const TYPE: GgmlType = GgmlType::Q8_1;
    const FACTORS: &'static [usize] = &[D, S];
    const USES_IMPORTANCE: bool = false;
    const DOT: Option<DotFn> = None;

    fn quantize_row(src: &[f32], dst: &mut [u8], _importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, None, |x, _, out| {
            let (d, qs) = round_q8(x);
            // The integer sum times the f32 d, rounded once to fp16 (ggml's `sum*d`).
            let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
            write_f16(out, D, d);
            write_f16(out, S, sum as f32 * d);
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
}

/// The 32 signed levels of a block (as bytes): the activations of the dot products.
#[inline]
pub(crate) fn qs(b: &[u8]) -> &[u8] {
    &b[QS..QS + QK]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::i8s;
    use crate::blocks::legacy::test_util::{amax, check_round_trip, q8_bound};
    use crate::blocks::q8_0::{self, Q8_0};
    use llq_testsupport::Rng;

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q8_1>(q8_bound, false);
    }

    #[test]
    fn s_is_d_times_the_level_sum_and_levels_match_q8_0() {
        let x = Rng::new(7).normals(128, 3.0);
        let mut q81 = vec![0u8; 4 * 36];
        Q8_1::quantize_row(&x, &mut q81, None);
        let mut q80 = vec![0u8; 4 * 34];
        Q8_0::quantize_row(&x, &mut q80, None);
        for (i, (b1, b0)) in q81.chunks(36).zip(q80.chunks(34)).enumerate() {
            assert_eq!(b1[D..D + 2], b0[q8_0::D..q8_0::D + 2], "same d");
            assert_eq!(b1[QS..], b0[q8_0::QS..], "same levels");
            // s uses d before its fp16 rounding, which is not stored: recompute it.
            let d = amax(&x[32 * i..32 * (i + 1)]) / 127.0;
            let sum: i32 = i8s(qs(b1)).sum();
            let s = u16::from_le_bytes([b1[S], b1[S + 1]]);
            assert_eq!(s, crate::float::f32_to_f16_bits(sum as f32 * d));
        }
        let mut y = vec![0f32; 128];
        Q8_1::dequantize_row(&q81, &mut y);
        let mut y0 = vec![0f32; 128];
        Q8_0::dequantize_row(&q80, &mut y0);
        assert_eq!(y, y0);
    }
}
