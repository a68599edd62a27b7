//! Q5_K: 176 bytes per 256 elements: `d`, `dmin` (fp16), 12 bytes of packed 6-bit sub-block scales
//! and mins, 32 bytes of fifth bits, then 128 bytes of low nibbles laid out as Q4_K's. Element
//! `i` of sub-block `j` is `d·sc_j·q − dmin·m_j`.

use super::sub32::{scale_min, Sub32, HEAD_BYTES};
use super::{dequantize_blocks, quantize_blocks};
use crate::codec::BlockCodec;
use crate::rounding::kquant::QkxParams;
use llq_types::GgmlType;

#[allow(non_camel_case_types)]
pub struct Q5_K;

const SUB32: Sub32 = Sub32 {
    nmax: 31,
    search: QkxParams {
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        mad: false,
    },
    clamp_imatrix_scales: true,
};

/// Start of the low nibbles; the fifth bits sit between the head and them.
const QS: usize = HEAD_BYTES + 32;

impl BlockCodec for Q5_K {
    const TYPE: GgmlType = GgmlType::Q5_K;

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, importance, |x, w, out| {
            let (head, rest) = out.split_at_mut(HEAD_BYTES);
            let (qh, qs) = rest.split_at_mut(QS - HEAD_BYTES);
            let levels = SUB32.quantize(x, w, head);
            qh.fill(0);
            // Chunk c of 64 elements: nibbles as Q4_K; the fifth bit of element i goes to bit 2c
            // of qh[i], that of element i+32 to bit 2c+1.
            for (c, (l, q)) in levels
                .chunks_exact(64)
                .zip(qs.chunks_exact_mut(32))
                .enumerate()
            {
                for (i, (byte, h)) in q.iter_mut().zip(qh.iter_mut()).enumerate() {
                    let (lo, hi) = (l[i], l[i + 32]);
                    *h |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
                    *byte = (lo & 0xf) | ((hi & 0xf) << 4);
                }
            }
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut super::Block| {
            let qh = &b[HEAD_BYTES..QS];
            for (c, (q, y)) in b[QS..]
                .chunks_exact(32)
                .zip(y.chunks_exact_mut(64))
                .enumerate()
            {
                let (d1, m1) = scale_min(b, 2 * c);
                let (d2, m2) = scale_min(b, 2 * c + 1);
                let (lo, hi) = y.split_at_mut(32);
                for (((&q, &h), lo), hi) in q.iter().zip(qh).zip(lo).zip(hi) {
                    let q1 = (q & 0xf) | (((h >> (2 * c)) & 1) << 4);
                    let q2 = (q >> 4) | (((h >> (2 * c + 1)) & 1) << 4);
                    *lo = d1 * q1 as f32 - m1;
                    *hi = d2 * q2 as f32 - m2;
                }
            }
        })
    }
}
