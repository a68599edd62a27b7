//! Q5_0: 22 bytes per 32 values: fp16 d, u32 of fifth bits, 16 bytes of low nibbles;
//! value = (q - 16) * d.

use super::{
    decode_symmetric, dequantize_blocks, fifth_bits, pack_nibbles, quantize_row_with, read_f16,
    unpack_levels, write_f16, Block, Levels, QK,
};
use crate::codec::BlockCodec;
use crate::rounding::legacy::symmetric_ref;
use crate::rounding::make_qx_quants;
use llq_types::GgmlType;

pub struct Q5_0;

/// The zero point: level 16 is 0.0, levels run from -16 to +15 steps of d.
const NMAX: i32 = 16;

fn write(d: f32, levels: &Levels, out: &mut [u8]) {
    write_f16(d, out);
    out[2..6].copy_from_slice(&fifth_bits(levels).to_le_bytes());
    pack_nibbles(levels, &mut out[6..]);
}

impl Q5_0 {
    /// `--quant-mode unbiased`: see [`super::quantize_row_refined`].
    pub(crate) fn quantize_row_refined(src: &[f32], dst: &mut [u8], importance: &[f32]) {
        super::quantize_row_refined(Self::TYPE, src, dst, importance, NMAX, write)
    }
}

impl BlockCodec for Q5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_row_with(
            Self::TYPE,
            src,
            dst,
            importance,
            |x, out| {
                let (d, levels) = symmetric_ref(x, NMAX);
                write(d, &levels, out)
            },
            |x, w, out| {
                let mut levels = [0; QK];
                let d = make_qx_quants(NMAX, x, Some(w), &mut levels);
                write(d, &levels, out)
            },
        )
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, out: &mut Block| {
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            decode_symmetric(read_f16(b), &unpack_levels(&b[6..], qh), NMAX, out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::test_util::{check_round_trip, symmetric_bound};

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q5_0>(symmetric_bound(16.0, false), false);
        check_round_trip::<Q5_0>(symmetric_bound(16.0, true), true);
    }
}
