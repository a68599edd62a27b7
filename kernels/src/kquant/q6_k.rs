//! Q6_K: 210 bytes per 256 elements: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16
//! signed 8-bit sub-block scales, then `d` (fp16). Element `i` of sub-block `j` (16 elements
//! each) is `d·sc_j·(q − 32)`.

use super::{dequantize_blocks, quantize_blocks, read_f16, write_f16, Levels};
use crate::codec::BlockCodec;
use crate::rounding::kquant::requantize_symmetric;
use crate::rounding::{make_qx_quants, nearest_int, GROUP_MAX_EPS};
use llq_types::{GgmlType, QK_K};

#[allow(non_camel_case_types)]
pub struct Q6_K;

const QL: usize = 0;
const QH: usize = 128;
const SCALES: usize = 192;
const D: usize = 208;

/// Each half of 128 elements uses 64 bytes of `ql` and 32 of `qh`: byte `l` of `ql` holds
/// elements `l` (low nibble) and `l+64` (high), byte `l+32` holds `l+32` and `l+96`, and `qh[l]`
/// their top two bits in that order.
fn pack(levels: &Levels, ql: &mut [u8], qh: &mut [u8]) {
    let halves = levels
        .chunks_exact(128)
        .zip(ql.chunks_exact_mut(64))
        .zip(qh.chunks_exact_mut(32));
    for ((l, ql), qh) in halves {
        for i in 0..32 {
            let (q1, q2, q3, q4) = (l[i], l[i + 32], l[i + 64], l[i + 96]);
            ql[i] = (q1 & 0xf) | ((q3 & 0xf) << 4);
            ql[i + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
            qh[i] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
}

impl BlockCodec for Q6_K {
    const TYPE: GgmlType = GgmlType::Q6_K;

    /// ggml's `quantize_row_q6_K_ref`, or `_impl` with importance, which only swaps the search's
    /// default `x²` weights for the importance.
    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, importance, |x, qw, out| {
            let mut levels = [0u8; QK_K];
            let mut scales = [0f32; 16];
            let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
            let subs = x.chunks_exact(16).zip(levels.chunks_exact_mut(16));
            for (j, (xs, lv)) in subs.enumerate() {
                let w = qw.map(|qw| &qw[16 * j..16 * j + 16]);
                scales[j] = make_qx_quants(32, xs, w, lv);
                if scales[j].abs() > max_abs_scale {
                    max_abs_scale = scales[j].abs();
                    max_scale = scales[j];
                }
            }
            if max_abs_scale < GROUP_MAX_EPS {
                out.fill(0);
                return;
            }
            let iscale = -128.0 / max_scale;
            let d = write_f16(out, D, 1.0 / iscale);
            for (sc, &s) in out[SCALES..D].iter_mut().zip(&scales) {
                // Clamped above only, then narrowed to a signed byte, as ggml does.
                *sc = nearest_int(iscale * s).min(127) as i8 as u8;
            }
            for (j, (xs, lv)) in x
                .chunks_exact(16)
                .zip(levels.chunks_exact_mut(16))
                .enumerate()
            {
                let d = d * f32::from(out[SCALES + j] as i8);
                // A zero scale keeps the search's levels, as in ggml.
                if d == 0.0 {
                    continue;
                }
                requantize_symmetric(xs, d, 32, lv);
            }
            let (ql, rest) = out.split_at_mut(QH);
            pack(&levels, ql, &mut rest[..SCALES - QH]);
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut super::Block| {
            let d = read_f16(b, D);
            let halves = y.chunks_exact_mut(128).zip(b[QL..QH].chunks_exact(64));
            for (n, (y, ql)) in halves.enumerate() {
                let qh = &b[QH + 32 * n..QH + 32 * n + 32];
                let sc = &b[SCALES + 8 * n..SCALES + 8 * n + 8];
                for i in 0..32 {
                    let is = i / 16;
                    let q = [
                        (ql[i] & 0xf) | ((qh[i] & 3) << 4),
                        (ql[i + 32] & 0xf) | (((qh[i] >> 2) & 3) << 4),
                        (ql[i] >> 4) | (((qh[i] >> 4) & 3) << 4),
                        (ql[i + 32] >> 4) | (((qh[i] >> 6) & 3) << 4),
                    ];
                    for (k, &q) in q.iter().enumerate() {
                        let s = f32::from(sc[is + 2 * k] as i8);
                        y[i + 32 * k] = d * s * (i32::from(q) - 32) as f32;
                    }
                }
            }
        })
    }
}
