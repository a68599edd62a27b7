//! Q4_1: 32 values in 20 bytes: fp16 `d`, fp16 `m`, then 16 bytes of 4-bit levels;
//! value = q·d + m. Dotted with Q8_1 activations.

use super::legacy::{
    dequantize_affine, dot, fill_map, nibble_pairs, pack_nibbles, quantize_affine, unpack_levels,
    Levels,
};
use super::{f16_at, q8_1, write_f16, BlockType, Codes};
use crate::dot::DotFn;
use llq_types::GgmlType;

pub(crate) const D: usize = 0;
pub(crate) const M: usize = 2;
/// The 16 bytes of nibbles.
pub(crate) const QS: usize = 4;

/// Highest level: 16 levels span the block's [min, max].
const NMAX: i32 = 15;

pub(crate) struct Q4_1;

impl BlockType for Q4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const FACTORS: &'static [usize] = &[D, M];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_affine(Self::TYPE, src, dst, importance, NMAX, write)
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_affine(Self::TYPE, src, dst, |b| {
            (f16_at(b, D), f16_at(b, M), unpack_levels(&b[QS..], None))
        })
    }

    const CODES: Option<Codes> = Some(Codes {
        max: NMAX as u8,
        map: code_map,
        write: write_codes,
    });
}

fn code_map(b: &[u8], zero: &mut [f32], step: &mut [f32]) {
    fill_map(f16_at(b, M), f16_at(b, D), zero, step)
}

fn write_codes(codes: &[u8], out: &mut [u8]) {
    pack_nibbles(codes.try_into().expect("a block of codes"), &mut out[QS..]);
}

fn write(d: f32, m: f32, levels: &Levels, out: &mut [u8]) {
    write_f16(out, D, d);
    write_f16(out, M, m);
    pack_nibbles(levels, &mut out[QS..]);
}

/// Σ q·y over a Q4_1 block (unsigned levels) and a Q8_1 block: the exact integer part of the
/// dot product.
// Out of line on purpose: see `legacy::dot`.
#[inline(never)]
fn isum(x: &[u8], y: &[u8]) -> i32 {
    let ys = q8_1::qs(y);
    nibble_pairs(&x[QS..])
        .enumerate()
        .map(|(j, (lo, hi))| {
            i32::from(lo) * i32::from(ys[j] as i8) + i32::from(hi) * i32::from(ys[j + 16] as i8)
        })
        .sum()
}

/// Per block `d·dy·Σq·y + m·s`, `s` being the activation block's stored `dy·Σy`.
fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::Q4_1, |x, y| {
        (f16_at(x, D) * f16_at(y, q8_1::D)) * isum(x, y) as f32 + f16_at(x, M) * f16_at(y, q8_1::S)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::legacy::test_util::{affine_bound, check_round_trip};

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q4_1>(affine_bound(15.0, false), false);
        check_round_trip::<Q4_1>(affine_bound(15.0, true), true);
    }
}
