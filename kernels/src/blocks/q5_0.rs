//! Q5_0: 32 values in 22 bytes: fp16 `d`, a little-endian u32 of fifth bits (bit j of level j),
//! then 16 bytes of low nibbles as Q4_0's; value = (q − 16)·d. Dotted with Q8_0 activations.

use super::legacy::{
    dequantize_symmetric, dot, fifth_bits, fill_map, pack_nibbles, quantize_symmetric,
    unpack_levels, Levels,
};
use super::{f16_at, i8s, q8_0, write_f16, BlockType, Codes};
use crate::dot::DotFn;
use llq_types::GgmlType;

pub(crate) const D: usize = 0;
/// The 4 bytes of fifth bits.
pub(crate) const QH: usize = 2;
/// The 16 bytes of nibbles.
pub(crate) const QS: usize = 6;

/// The zero point: level 16 is 0.0, levels run from -16 to +15 steps of d.
const NMAX: i32 = 16;

pub(crate) struct Q5_0;

impl BlockType for Q5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const FACTORS: &'static [usize] = &[D];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_symmetric(Self::TYPE, src, dst, importance, (NMAX, false), write)
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_symmetric(Self::TYPE, src, dst, NMAX, |b| (f16_at(b, D), levels(b)))
    }

    fn quantize_row_unbiased(src: &[f32], dst: &mut [u8], importance: &[f32]) {
        quantize_symmetric(Self::TYPE, src, dst, Some(importance), (NMAX, true), write)
    }

    const CODES: Option<Codes> = Some(Codes {
        max: (2 * NMAX - 1) as u8,
        map: code_map,
        write: write_codes,
    });
}

fn write(d: f32, levels: &Levels, out: &mut [u8]) {
    write_f16(out, D, d);
    write_levels(levels, out);
}

fn write_levels(levels: &Levels, out: &mut [u8]) {
    out[QH..QS].copy_from_slice(&fifth_bits(levels));
    pack_nibbles(levels, &mut out[QS..]);
}

fn code_map(b: &[u8], zero: &mut [f32], step: &mut [f32]) {
    let d = f16_at(b, D);
    fill_map(-NMAX as f32 * d, d, zero, step)
}

fn write_codes(codes: &[u8], out: &mut [u8]) {
    write_levels(codes.try_into().expect("a block of codes"), out)
}

#[inline(always)]
fn levels(b: &[u8]) -> Levels {
    unpack_levels(&b[QS..], Some(&b[QH..QS]))
}

/// Σ (q − 16)·y over a Q5_0 block and a Q8_0 block: the exact integer part of the dot product.
// Out of line on purpose: see `legacy::dot`.
#[inline(never)]
fn isum(x: &[u8], y: &[u8]) -> i32 {
    let q = levels(x);
    q.iter()
        .zip(i8s(q8_0::qs(y)))
        .map(|(&q, y)| (i32::from(q) - NMAX) * y)
        .sum()
}

fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::Q5_0, |x, y| {
        (f16_at(x, D) * f16_at(y, q8_0::D)) * isum(x, y) as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::legacy::test_util::{check_round_trip, symmetric_bound};

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q5_0>(symmetric_bound(16.0, false), false);
        check_round_trip::<Q5_0>(symmetric_bound(16.0, true), true);
    }
}
