//! IQ4_XS: 256 values in 136 bytes: fp16 `d`; a u16 of the sub-scales' high 2 bits and 4 bytes
//! of their low 4 bits (6-bit sub-scales `ls`, one per group of 32); then 128 bytes of 4-bit
//! indices into [`iq4::KVALUES`], each group's 16 bytes laid out as IQ4_NL's. Value =
//! d·(ls − 32)·KVALUES[i]. Dotted with Q8_K activations.

use super::iq4::{self, Indices};
use super::kquant::{dot, KSums};
use super::legacy::QK;
use super::{dequantize_blocks, f16_at, q8_k, quantize_blocks, write_f16, BlockType};
use crate::dot::DotFn;
use crate::rounding::iq4 as search;
use llq_types::{GgmlType, QK_K};

pub(crate) const D: usize = 0;
/// The u16 (little-endian) of 2-bit high parts: bits 2j, 2j+1 belong to group j.
pub(crate) const SCALES_H: usize = 2;
/// 4 bytes of 4-bit low parts: group j's in nibble j % 2 (low first) of byte j / 2.
pub(crate) const SCALES_L: usize = 4;
/// The 128 bytes of nibbles, 16 per group.
pub(crate) const QS: usize = 8;

const GROUPS: usize = QK_K / QK;

#[allow(non_camel_case_types)]
pub(crate) struct IQ4_XS;

impl BlockType for IQ4_XS {
    const TYPE: GgmlType = GgmlType::IQ4_XS;
    const FACTORS: &'static [usize] = &[D];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_blocks(
            Self::TYPE,
            src,
            dst,
            importance,
            |x: &[f32; QK_K], w, out| {
                let mut scales = [0f32; GROUPS];
                search::group_scales(x, w.map(|w| &w[..]), &mut scales);
                // Sub-scales and indices come from the unrounded d; only the stored one is fp16.
                let d = search::super_scale(&scales);
                write_f16(out, D, d);
                let mut high = 0u16;
                out[SCALES_L..QS].fill(0);
                for (g, (&scale, xb)) in scales.iter().zip(x.chunks_exact(QK)).enumerate() {
                    let (l, inv) = search::sub_scale(d, scale);
                    let mut idx: Indices = [0; QK];
                    search::indices(xb, inv, &mut idx);
                    iq4::pack(&idx, &mut out[QS + 16 * g..]);
                    let u = (l + 32) as u16;
                    out[SCALES_L + g / 2] |= ((u & 15) as u8) << (4 * (g % 2));
                    high |= (u >> 4) << (2 * g);
                }
                out[SCALES_H..SCALES_L].copy_from_slice(&high.to_le_bytes());
            },
        )
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut [f32; QK_K]| {
            let d = f16_at(b, D);
            for (g, y) in y.chunks_exact_mut(QK).enumerate() {
                // Exact: 11 × 6 × 7 significant bits fit f32's 24.
                let dl = d * sub_scale(b, g) as f32;
                for (y, v) in y.iter_mut().zip(iq4::values(group(b, g))) {
                    *y = dl * f32::from(v);
                }
            }
        })
    }
}

/// Group `g`'s sub-scale, ls − 32 (−32..=31).
#[inline]
pub(crate) fn sub_scale(b: &[u8], g: usize) -> i32 {
    let high = u16::from_le_bytes([b[SCALES_H], b[SCALES_H + 1]]);
    let low = (b[SCALES_L + g / 2] >> (4 * (g % 2))) & 15;
    (i32::from(low) | (i32::from((high >> (2 * g)) & 3) << 4)) - 32
}

/// Group `g`'s 16 nibble bytes.
#[inline]
fn group(b: &[u8], g: usize) -> &[u8] {
    &b[QS + 16 * g..QS + 16 * (g + 1)]
}

/// Σ_g (ls_g − 32)·Σ value·y over a super-block and a Q8_K block, with no min term. Exact
/// (|Σ| ≤ 8·32·32·127·127 < 2^31). ggml's scalar code scales each group in f32 instead; its
/// AVX2 code, like this, in integers.
#[inline(never)]
fn isum(x: &[u8], y: &[u8]) -> KSums {
    let s = (0..GROUPS)
        .map(|g| sub_scale(x, g) * iq4::isum(group(x, g), &y[q8_k::QS + QK * g..]))
        .sum();
    (s, 0)
}

fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::IQ4_XS, (D, None), isum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_all_zero_super_block_is_as_ggml_writes_it() {
        // d = −0.0, every sub-scale 0 (stored 32: high bits 2), every index 8 (level +1).
        let mut q = [0u8; 136];
        IQ4_XS::quantize_row(&[0.0; 256], &mut q, None);
        assert_eq!(&q[..QS], &[0x00, 0x80, 0xaa, 0xaa, 0, 0, 0, 0]);
        assert!(q[QS..].iter().all(|&b| b == 0x88));
        assert!((0..GROUPS).all(|g| sub_scale(&q, g) == 0));
    }
}
