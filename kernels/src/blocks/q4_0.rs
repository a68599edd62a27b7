//! Q4_0: 32 values in 18 bytes: fp16 `d`, then 16 bytes of 4-bit levels; value = (q − 8)·d.
//! Dotted with Q8_0 activations.

use super::legacy::{
    dequantize_symmetric, dot, fill_map, nibble_pairs, pack_nibbles, quantize_symmetric,
    unpack_levels, Levels, QK,
};
use super::{f16_at, q8_0, write_f16, BlockType, Codes};
use crate::dot::DotFn;
use llq_types::GgmlType;

pub(crate) const D: usize = 0;
/// The 16 bytes of nibbles.
pub(crate) const QS: usize = 2;

/// The zero point: level 8 is 0.0, levels run from -8 to +7 steps of d.
const NMAX: i32 = 8;

pub(crate) struct Q4_0;

impl BlockType for Q4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const FACTORS: &'static [usize] = &[D];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_symmetric(Self::TYPE, src, dst, importance, (NMAX, false), write)
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_symmetric(Self::TYPE, src, dst, NMAX, |b| {
            (f16_at(b, D), unpack_levels(&b[QS..], None))
        })
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
    pack_nibbles(levels, &mut out[QS..]);
}

fn code_map(b: &[u8], zero: &mut [f32], step: &mut [f32]) {
    let d = f16_at(b, D);
    fill_map(-NMAX as f32 * d, d, zero, step)
}

fn write_codes(codes: &[u8], out: &mut [u8]) {
    pack_nibbles(codes.try_into().expect("a block of codes"), &mut out[QS..]);
}

/// Σ (q − 8)·y over a Q4_0 block and a Q8_0 block: the exact integer part of the dot product,
/// which every SIMD kernel must equal.
// Out of line on purpose: see `legacy::dot`.
#[inline(never)]
fn isum(x: &[u8], y: &[u8]) -> i32 {
    let (y0, y1) = q8_0::qs(y).split_at(QK / 2);
    nibble_pairs(&x[QS..])
        .zip(y0.iter().zip(y1))
        .map(|((lo, hi), (&a, &b))| {
            (i32::from(lo) - NMAX) * i32::from(a as i8)
                + (i32::from(hi) - NMAX) * i32::from(b as i8)
        })
        .sum()
}

fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::Q4_0, |x, y| {
        (f16_at(x, D) * f16_at(y, q8_0::D)) * isum(x, y) as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::legacy::test_util::{check_round_trip, symmetric_bound};

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q4_0>(symmetric_bound(8.0, false), false);
        check_round_trip::<Q4_0>(symmetric_bound(8.0, true), true);
    }
}
