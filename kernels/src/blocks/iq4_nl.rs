//! IQ4_NL: 32 values in 18 bytes: fp16 `d`, then 16 bytes of 4-bit indices into the non-linear
//! table [`iq4::KVALUES`]; value = d·KVALUES[i]. llama.cpp's type for rows that are whole 32-blocks
//! but not whole 256-blocks where IQ4_XS was asked for. Dotted with Q8_0 activations.

use super::iq4::{self, Indices};
use super::legacy::{dot, QK};
use super::{dequantize_blocks, f16_at, q8_0, quantize_blocks, write_f16, BlockType};
use crate::dot::DotFn;
use crate::rounding::{inverse_or_zero, iq4 as search};
use llq_types::GgmlType;

pub(crate) const D: usize = 0;
/// The 16 bytes of nibbles.
pub(crate) const QS: usize = 2;

#[allow(non_camel_case_types)]
pub(crate) struct IQ4_NL;

impl BlockType for IQ4_NL {
    const TYPE: GgmlType = GgmlType::IQ4_NL;
    const FACTORS: &'static [usize] = &[D];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, importance, |x: &[f32; QK], w, out| {
            let mut scale = [0f32];
            search::group_scales(x, w.map(|w| &w[..]), &mut scale);
            let d = scale[0];
            write_f16(out, D, d);
            // The indices are re-chosen with the unrounded scale, as ggml does.
            let mut idx: Indices = [0; QK];
            search::indices(x, inverse_or_zero(d), &mut idx);
            iq4::pack(&idx, &mut out[QS..]);
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut [f32; QK]| {
            let d = f16_at(b, D);
            for (y, v) in y.iter_mut().zip(iq4::values(&b[QS..])) {
                *y = d * f32::from(v);
            }
        })
    }
}

/// Σ value·y of a block against a Q8_0 block: exact.
// Out of line on purpose: see `legacy::dot`.
#[inline(never)]
fn isum(x: &[u8], y: &[u8]) -> i32 {
    iq4::isum(&x[QS..], q8_0::qs(y))
}

fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::IQ4_NL, |x, y| {
        (f16_at(x, D) * f16_at(y, q8_0::D)) * isum(x, y) as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_all_zero_block_is_d_zero_and_level_one() {
        let mut q = [0xffu8; 18];
        IQ4_NL::quantize_row(&[0.0; 32], &mut q, None);
        assert_eq!(&q[..2], &[0, 0]);
        assert!(q[QS..].iter().all(|&b| b == 0x88), "{q:?}");
        assert_eq!(iq4::KVALUES[8], 1);
    }
}
