//! Q8_K: 256 values in 292 bytes: `d` (f32), 256 signed 8-bit levels, then 16 little-endian i16
//! sums of each 16 levels (which the K-quant dot products use to apply their mins and offsets);
//! value = d·q. The activation type of every K-quant, never stored in files.

use super::{dequantize_blocks, f32_at, i8s, quantize_blocks, BlockType};
use crate::dot::DotFn;
use crate::rounding::{nearest_int, signed_absmax};
use llq_types::{GgmlType, QK_K};

/// `d`, an f32.
pub(crate) const D: usize = 0;
/// The 256 signed levels.
pub(crate) const QS: usize = 4;
/// The 16 i16 sums of 16 levels.
pub(crate) const BSUMS: usize = QS + QK_K;

#[allow(non_camel_case_types)]
pub(crate) struct Q8_K;

impl BlockType for Q8_K {
    const TYPE: GgmlType = GgmlType::Q8_K;
    const FACTORS: &'static [usize] = &[];
    const USES_IMPORTANCE: bool = false;
    const DOT: Option<DotFn> = None;

    /// ggml's `quantize_row_q8_K_ref`; importance does not apply to activations.
    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, None, |x: &[f32; QK_K], _, out| {
            let (max, amax) = signed_absmax(x);
            // ggml leaves the sums of an all-zero block unwritten; zero is what they sum to.
            if amax == 0.0 {
                out.fill(0);
                return;
            }
            // −127 rather than −128 keeps every level in −127..=127.
            let iscale = -127.0 / max;
            let (head, rest) = out.split_at_mut(QS);
            let (qs, bsums) = rest.split_at_mut(QK_K);
            for (q, &v) in qs.iter_mut().zip(x) {
                *q = nearest_int(iscale * v).min(127) as i8 as u8;
            }
            for (s, q) in bsums.chunks_exact_mut(2).zip(qs.chunks_exact(16)) {
                let total: i32 = i8s(q).sum();
                s.copy_from_slice(&(total as i16).to_le_bytes());
            }
            head.copy_from_slice(&(1.0 / iscale).to_le_bytes());
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut [f32; QK_K]| {
            let d = f32_at(b, D);
            for (y, q) in y.iter_mut().zip(levels(b, 0, QK_K)) {
                *y = d * q as f32;
            }
        })
    }
}

/// Levels `from..from + len`, as i32.
#[inline]
pub(crate) fn levels(y: &[u8], from: usize, len: usize) -> impl Iterator<Item = i32> + '_ {
    i8s(&y[QS + from..QS + from + len])
}

/// The stored sum of sub-block `j`'s 16 levels.
#[inline]
pub(crate) fn bsum(y: &[u8], j: usize) -> i32 {
    i32::from(i16::from_le_bytes([y[BSUMS + 2 * j], y[BSUMS + 2 * j + 1]]))
}
