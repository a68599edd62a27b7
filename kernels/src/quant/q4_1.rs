//! Q4_1: 20 bytes per 32 values: fp16 d, fp16 m, 16 bytes of 4-bit levels; value = q * d + m.

use super::{
    decode_affine, dequantize_blocks, pack_nibbles, quantize_row_with, read_f16, unpack_levels,
    write_f16, Block, Levels,
};
use crate::codec::BlockCodec;
use crate::rounding::legacy::{affine_ref, affine_search};
use llq_types::GgmlType;

pub struct Q4_1;

/// Highest level: 16 levels span the block's [min, max].
const NMAX: i32 = 15;

fn write(d: f32, m: f32, levels: &Levels, out: &mut [u8]) {
    write_f16(d, out);
    write_f16(m, &mut out[2..]);
    pack_nibbles(levels, &mut out[4..]);
}

impl BlockCodec for Q4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_row_with(
            Self::TYPE,
            src,
            dst,
            importance,
            |x, out| {
                let (d, m, levels) = affine_ref(x, NMAX);
                write(d, m, &levels, out)
            },
            |x, w, out| {
                let (d, m, levels) = affine_search(x, w, NMAX);
                write(d, m, &levels, out)
            },
        )
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, out: &mut Block| {
            decode_affine(
                read_f16(b),
                read_f16(&b[2..]),
                &unpack_levels(&b[4..], 0),
                out,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::test_util::{affine_bound, check_round_trip};

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q4_1>(affine_bound(15.0, false), false);
        check_round_trip::<Q4_1>(affine_bound(15.0, true), true);
    }
}
