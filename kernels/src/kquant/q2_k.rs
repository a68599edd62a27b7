//! Q2_K: 84 bytes per 256 elements: 16 bytes of sub-block scales (low nibble) and mins (high
//! nibble), 64 bytes of 2-bit levels, then `d` and `dmin` (fp16). Element `i` of sub-block `j`
//! (16 elements each) is `d·sc_j·q − dmin·m_j`.

use super::{dequantize_blocks, pack_2bit, quantize_blocks, read_f16, write_f16, Block};
use crate::codec::BlockCodec;
use crate::rounding::kquant::{
    make_qkx_quants, make_qp_quants, requantize_affine, QkxParams, IMATRIX_SEARCH,
};
use crate::rounding::{nearest_int, sum, sum_squares};
use llq_types::{GgmlType, QK_K};

#[allow(non_camel_case_types)]
pub struct Q2_K;

const SCALES: usize = 0;
const QS: usize = 16;
const D: usize = 80;
const DMIN: usize = 82;

/// The sweep without importance weights; Q2_K alone fits by absolute error.
const SEARCH: QkxParams = QkxParams {
    rmin: -0.5,
    rdelta: 0.1,
    nstep: 15,
    mad: true,
};

/// Largest 4-bit sub-block scale or min.
const Q4SCALE: f32 = 15.0;

/// Sub-block scales (low nibble) and mins (high nibble) and their fp16 factors (unrounded).
struct Scales {
    packed: [u8; 16],
    d: f32,
    dmin: f32,
}

/// ggml's `quantize_row_q2_K_ref`: each 4-bit level is the sub-block value over the largest one.
fn scales_plain(x: &Block, levels: &mut [u8; QK_K]) -> Scales {
    let mut scales = [0f32; 16];
    let mut mins = [0f32; 16];
    let mut weights = [0f32; 16];
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for (j, (xs, lv)) in x
        .chunks_exact(16)
        .zip(levels.chunks_exact_mut(16))
        .enumerate()
    {
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = v.abs();
        }
        (scales[j], mins[j]) = make_qkx_quants(3, xs, &weights, lv, &SEARCH);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let mut packed = [0u8; 16];
    let mut d = 0.0;
    if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for (p, &s) in packed.iter_mut().zip(&scales) {
            // Stored into a byte unclamped (wrapping), as ggml does.
            *p = nearest_int(iscale * s) as u8;
        }
        d = max_scale / Q4SCALE;
    }
    let mut dmin = 0.0;
    if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for (p, &m) in packed.iter_mut().zip(&mins) {
            *p |= (nearest_int(iscale * m) << 4) as u8;
        }
        dmin = max_min / Q4SCALE;
    }
    Scales { packed, d, dmin }
}

/// ggml's `quantize_row_q2_K_impl`: values weighted by importance·sqrt(σ² + x²), the 4-bit
/// levels fitted by weighted least squares.
fn scales_weighted(x: &Block, qw: &Block, levels: &mut [u8; QK_K]) -> Scales {
    let mut scales = [0f32; 16];
    let mut mins = [0f32; 16];
    let mut sw = [0f32; 16];
    let mut weights = [0f32; 16];
    let sigma2 = sum_squares(x) / QK_K as f32;
    let subs = x
        .chunks_exact(16)
        .zip(levels.chunks_exact_mut(16))
        .zip(qw.chunks_exact(16));
    for (j, ((xs, lv), qw)) in subs.enumerate() {
        for ((w, &v), &q) in weights.iter_mut().zip(xs).zip(qw) {
            *w = q * (sigma2 + v * v).sqrt();
        }
        sw[j] = sum(&weights);
        (scales[j], mins[j]) = make_qkx_quants(3, xs, &weights, lv, &IMATRIX_SEARCH);
    }
    let mut ls = [0u8; 16];
    let mut lm = [0u8; 16];
    let d = make_qp_quants(15, &scales, &mut ls, &sw);
    let dmin = make_qp_quants(15, &mins, &mut lm, &sw);
    let mut packed = [0u8; 16];
    for ((p, &s), &m) in packed.iter_mut().zip(&ls).zip(&lm) {
        *p = s | (m << 4);
    }
    Scales { packed, d, dmin }
}

impl BlockCodec for Q2_K {
    const TYPE: GgmlType = GgmlType::Q2_K;

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, importance, |x, qw, out| {
            let mut levels = [0u8; QK_K];
            let s = match qw {
                None => scales_plain(x, &mut levels),
                Some(qw) => scales_weighted(x, qw, &mut levels),
            };
            out[SCALES..QS].copy_from_slice(&s.packed);
            let d = write_f16(out, D, s.d);
            let dmin = write_f16(out, DMIN, s.dmin);
            let subs = x.chunks_exact(16).zip(levels.chunks_exact_mut(16));
            for ((xs, lv), &sc) in subs.zip(&s.packed) {
                let d = d * (sc & 0xf) as f32;
                // A zero scale keeps the search's levels, as in ggml.
                if d == 0.0 {
                    continue;
                }
                requantize_affine(xs, d, dmin * (sc >> 4) as f32, 3, lv);
            }
            pack_2bit(&levels, &mut out[QS..D]);
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut super::Block| {
            let (d, dmin) = (read_f16(b, D), read_f16(b, DMIN));
            // Sub-block j (16 elements) sits at bits 2·((j/2)%4) of the 16 bytes starting at
            // 32·(j/8) + 16·(j%2), the inverse of `pack_2bit`.
            for (j, (y, &sc)) in y.chunks_exact_mut(16).zip(&b[SCALES..QS]).enumerate() {
                let dl = d * (sc & 0xf) as f32;
                let ml = dmin * (sc >> 4) as f32;
                let q = &b[QS + 32 * (j / 8) + 16 * (j % 2)..][..16];
                let shift = 2 * ((j / 2) % 4);
                for (y, &q) in y.iter_mut().zip(q) {
                    *y = dl * ((q >> shift) & 3) as f32 - ml;
                }
            }
        })
    }
}
