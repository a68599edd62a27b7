//! Q5_1: 32 values in 24 bytes: fp16 `d`, fp16 `m`, a little-endian u32 of fifth bits, then 16
//! bytes of low nibbles as Q4_0's; value = q·d + m. Dotted with Q8_1 activations.

use super::legacy::{
    dequantize_affine, dot, fifth_bits, fill_map, pack_nibbles, quantize_affine, unpack_levels,
    Levels,
};
use super::{f16_at, i8s, q8_1, write_f16, BlockType, Codes};
use crate::dot::DotFn;
use llq_types::GgmlType;

pub(crate) const D: usize = 0;
pub(crate) const M: usize = 2;
/// The 4 bytes of fifth bits.
pub(crate) const QH: usize = 4;
/// The 16 bytes of nibbles.
pub(crate) const QS: usize = 8;

/// Highest level: 32 levels span the block's [min, max].
const NMAX: i32 = 31;

pub(crate) struct Q5_1;

impl BlockType for Q5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const FACTORS: &'static [usize] = &[D, M];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_affine(Self::TYPE, src, dst, importance, NMAX, write)
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_affine(Self::TYPE, src, dst, |b| {
            (f16_at(b, D), f16_at(b, M), levels(b))
        })
    }

    const CODES: Option<Codes> = Some(Codes {
        max: NMAX as u8,
        map: code_map,
        write: write_codes,
    });
}

fn write(d: f32, m: f32, levels: &Levels, out: &mut [u8]) {
    write_f16(out, D, d);
    write_f16(out, M, m);
    write_levels(levels, out);
}

fn write_levels(levels: &Levels, out: &mut [u8]) {
    out[QH..QS].copy_from_slice(&fifth_bits(levels));
    pack_nibbles(levels, &mut out[QS..]);
}

fn code_map(b: &[u8], zero: &mut [f32], step: &mut [f32]) {
    fill_map(f16_at(b, M), f16_at(b, D), zero, step)
}

fn write_codes(codes: &[u8], out: &mut [u8]) {
    write_levels(codes.try_into().expect("a block of codes"), out)
}

#[inline(always)]
fn levels(b: &[u8]) -> Levels {
    unpack_levels(&b[QS..], Some(&b[QH..QS]))
}

/// Σ q·y over a Q5_1 block and a Q8_1 block: the exact integer part of the dot product.
// Out of line on purpose: see `legacy::dot`.
#[inline(never)]
fn isum(x: &[u8], y: &[u8]) -> i32 {
    let q = levels(x);
    q.iter()
        .zip(i8s(q8_1::qs(y)))
        .map(|(&q, y)| i32::from(q) * y)
        .sum()
}

/// Per block `d·dy·Σq·y + m·s`, `s` being the activation block's stored `dy·Σy`.
fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::Q5_1, |x, y| {
        (f16_at(x, D) * f16_at(y, q8_1::D)) * isum(x, y) as f32 + f16_at(x, M) * f16_at(y, q8_1::S)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::legacy::test_util::{affine_bound, check_round_trip};

    #[test]
    fn error_is_within_half_a_step() {
        check_round_trip::<Q5_1>(affine_bound(31.0, false), false);
        check_round_trip::<Q5_1>(affine_bound(31.0, true), true);
    }
}
