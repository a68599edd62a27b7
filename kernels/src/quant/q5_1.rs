//! Q5_1: 24 bytes per 32 values: fp16 d, fp16 m, u32 of fifth bits, 16 bytes of low nibbles;
//! value = q * d + m.

use super::{
    decode_affine, dequantize_blocks, fifth_bits, pack_nibbles, quantize_row_with, read_f16,
    unpack_levels, write_f16, Block, Levels,
};
use crate::codec::BlockCodec;
use crate::rounding::legacy::{affine_ref, affine_search};
use llq_types::GgmlType;

pub struct Q5_1;

/// Highest level: 32 levels span the block's [min, max].
const NMAX: i32 = 31;

fn write(d: f32, m: f32, levels: &Levels, out: &mut [u8]) {
    write_f16(d, out);
    write_f16(m, &mut out[2..]);
    out[4..8].copy_from_slice(&fifth_bits(levels).to_le_bytes());
    pack_nibbles(levels, &mut out[8..]);
}

impl BlockCodec for Q5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;

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
            let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            decode_affine(
                read_f16(b),
                read_f16(&b[2..]),
                &unpack_levels(&b[8..], qh),
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
        check_round_trip::<Q5_1>(affine_bound(31.0, false), false);
        check_round_trip::<Q5_1>(affine_bound(31.0, true), true);
    }
}
