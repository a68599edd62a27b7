//! Q4_0: 18 bytes per 32 values: fp16 d, then 16 bytes of 4-bit levels; value = (q - 8) * d.

use super::{
    decode_symmetric, dequantize_blocks, pack_nibbles, quantize_row_with, read_f16, unpack_levels,
    write_f16, Block, Levels, QK,
};
use crate::codec::BlockCodec;
use crate::rounding::legacy::symmetric_ref;
use crate::rounding::make_qx_quants;
use llq_types::GgmlType;

pub struct Q4_0;

/// The zero point: level 8 is 0.0, levels run from -8 to +7 steps of d.
const NMAX: i32 = 8;

fn write(d: f32, levels: &Levels, out: &mut [u8]) {
    write_f16(d, out);
    pack_nibbles(levels, &mut out[2..]);
}

impl Q4_0 {
    /// `--quant-mode unbiased`: see [`super::quantize_row_refined`].
    pub(crate) fn quantize_row_refined(src: &[f32], dst: &mut [u8], importance: &[f32]) {
        super::quantize_row_refined(Self::TYPE, src, dst, importance, NMAX, write)
    }
}

impl BlockCodec for Q4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;

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
            decode_symmetric(read_f16(b), &unpack_levels(&b[2..], 0), NMAX, out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::test_util::{check_round_trip, symmetric_bound};

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q4_0>(symmetric_bound(8.0, false), false);
        check_round_trip::<Q4_0>(symmetric_bound(8.0, true), true);
    }
}
