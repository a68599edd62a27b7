//! Q8_K: 292 bytes per 256 elements: `d` (f32), 256 signed 8-bit levels, then 16 little-endian
//! i16 sums of each 16 levels (which the K-quant dot products use to apply the mins). Used for
//! activations, never stored in files. Element `i` is `d·q_i`.

use super::{dequantize_blocks, quantize_blocks};
use crate::codec::BlockCodec;
use crate::rounding::nearest_int;
use llq_types::{GgmlType, QK_K};

#[allow(non_camel_case_types)]
pub struct Q8_K;

const QS: usize = 4;
const BSUMS: usize = QS + QK_K;

impl BlockCodec for Q8_K {
    const TYPE: GgmlType = GgmlType::Q8_K;

    /// ggml's `quantize_row_q8_K_ref`; importance does not apply to activations.
    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, None, |x, _, out| {
            let (mut max, mut amax) = (0.0f32, 0.0f32);
            for &v in x {
                if v.abs() > amax {
                    amax = v.abs();
                    max = v;
                }
            }
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
                let total: i32 = q.iter().map(|&q| i32::from(q as i8)).sum();
                s.copy_from_slice(&(total as i16).to_le_bytes());
            }
            head.copy_from_slice(&(1.0 / iscale).to_le_bytes());
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut super::Block| {
            let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            for (y, &q) in y.iter_mut().zip(&b[QS..BSUMS]) {
                *y = d * f32::from(q as i8);
            }
        })
    }
}
