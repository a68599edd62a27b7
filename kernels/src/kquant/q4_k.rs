//! Q4_K: 144 bytes per 256 elements: `d`, `dmin` (fp16), 12 bytes of packed 6-bit sub-block scales
//! and mins, then 128 bytes of 4-bit levels. Element `i` of sub-block `j` is
//! `d·sc_j·q − dmin·m_j`.

use super::sub32::{scale_min, Sub32, HEAD_BYTES};
use super::{dequantize_blocks, quantize_blocks};
use crate::codec::BlockCodec;
use crate::rounding::kquant::QkxParams;
use llq_types::GgmlType;

#[allow(non_camel_case_types)]
pub struct Q4_K;

const SUB32: Sub32 = Sub32 {
    nmax: 15,
    search: QkxParams {
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        mad: false,
    },
    clamp_imatrix_scales: false,
};

impl BlockCodec for Q4_K {
    const TYPE: GgmlType = GgmlType::Q4_K;

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, importance, |x, w, out| {
            let (head, qs) = out.split_at_mut(HEAD_BYTES);
            let levels = SUB32.quantize(x, w, head);
            // Each 64 elements share 32 bytes: the first 32 in the low nibbles, the next 32 high.
            for (l, q) in levels.chunks_exact(64).zip(qs.chunks_exact_mut(32)) {
                for (i, byte) in q.iter_mut().enumerate() {
                    *byte = l[i] | (l[i + 32] << 4);
                }
            }
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut super::Block| {
            let qs = &b[HEAD_BYTES..];
            for (c, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
                let (d1, m1) = scale_min(b, 2 * c);
                let (d2, m2) = scale_min(b, 2 * c + 1);
                let (lo, hi) = y.split_at_mut(32);
                for ((&q, lo), hi) in q.iter().zip(lo).zip(hi) {
                    *lo = d1 * (q & 0xf) as f32 - m1;
                    *hi = d2 * (q >> 4) as f32 - m2;
                }
            }
        })
    }
}
