//! Q3_K: 110 bytes per 256 elements: 32 bytes of high bits (`hmask`), 64 bytes of 2-bit low
//! parts, 12 bytes of packed 6-bit signed sub-block scales, then `d` (fp16). Element `i` of
//! sub-block `j` (16 elements each) is `d·(sc_j − 32)·(q − 4)`.

use super::{dequantize_blocks, pack_2bit, quantize_blocks, read_f16, write_f16, Block};
use crate::codec::BlockCodec;
use crate::rounding::kquant::{make_q3_quants, requantize_symmetric};
use crate::rounding::{make_qx_quants, nearest_int, sum, sum_squares};
use llq_types::{GgmlType, QK_K};

#[allow(non_camel_case_types)]
pub struct Q3_K;

const HMASK: usize = 0;
const QS: usize = 32;
const SCALES: usize = 96;
const D: usize = 108;

/// Sub-block scale `j` (of 16, 6 bits, offset by 32): low nibbles in bytes 0–7 (low then high
/// half), the top two bits in bytes 8–11.
fn set_scale(packed: &mut [u8], j: usize, l: u8) {
    if j < 8 {
        packed[j] = l & 0xf;
    } else {
        packed[j - 8] |= (l & 0xf) << 4;
    }
    packed[8 + j % 4] |= (l >> 4) << (2 * (j / 4));
}

/// The inverse of [`set_scale`], with the offset removed.
fn scale(packed: &[u8], j: usize) -> i32 {
    let low = if j < 8 {
        packed[j] & 0xf
    } else {
        packed[j - 8] >> 4
    };
    let high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    i32::from(low | (high << 4)) - 32
}

/// ggml's `quantize_row_q3_K_ref`: each sub-block scale relative to the one of largest
/// magnitude, which maps to −32.
fn scales_plain(x: &Block, levels: &mut [u8; QK_K], packed: &mut [u8]) -> f32 {
    let mut scales = [0f32; 16];
    let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
    for (j, (xs, lv)) in x
        .chunks_exact(16)
        .zip(levels.chunks_exact_mut(16))
        .enumerate()
    {
        scales[j] = make_q3_quants(4, xs.try_into().unwrap(), lv.try_into().unwrap());
        if scales[j].abs() > amax {
            amax = scales[j].abs();
            max_scale = scales[j];
        }
    }
    if max_scale == 0.0 {
        return 0.0;
    }
    let iscale = -32.0 / max_scale;
    for (j, &s) in scales.iter().enumerate() {
        // ggml narrows to a signed byte before clamping.
        let l = (nearest_int(iscale * s) as i8).clamp(-32, 31) + 32;
        set_scale(packed, j, l as u8);
    }
    1.0 / iscale
}

/// ggml's `quantize_row_q3_K_impl`: values weighted by importance·sqrt(2σ² + x²), the 6-bit
/// scales fitted by weighted least squares.
fn scales_weighted(x: &Block, qw: &Block, levels: &mut [u8; QK_K], packed: &mut [u8]) -> f32 {
    let mut scales = [0f32; 16];
    let mut sw = [0f32; 16];
    let mut weights = [0f32; 16];
    let sigma2 = 2.0 * sum_squares(x) / QK_K as f32;
    let subs = x
        .chunks_exact(16)
        .zip(levels.chunks_exact_mut(16))
        .zip(qw.chunks_exact(16));
    for (j, ((xs, lv), qw)) in subs.enumerate() {
        for ((w, &v), &q) in weights.iter_mut().zip(xs).zip(qw) {
            *w = q * (sigma2 + v * v).sqrt();
        }
        sw[j] = sum(&weights);
        scales[j] = make_qx_quants(4, xs, Some(&weights), lv);
    }
    let mut ls = [0u8; 16];
    let d = make_qx_quants(32, &scales, Some(&sw), &mut ls);
    for (j, &l) in ls.iter().enumerate() {
        set_scale(packed, j, l);
    }
    d
}

impl BlockCodec for Q3_K {
    const TYPE: GgmlType = GgmlType::Q3_K;

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, importance, |x, qw, out| {
            let mut levels = [0u8; QK_K];
            let packed = &mut out[SCALES..D];
            packed.fill(0);
            let d = match qw {
                None => scales_plain(x, &mut levels, packed),
                Some(qw) => scales_weighted(x, qw, &mut levels, packed),
            };
            let d = write_f16(out, D, d);
            for (j, (xs, lv)) in x
                .chunks_exact(16)
                .zip(levels.chunks_exact_mut(16))
                .enumerate()
            {
                let d = d * scale(&out[SCALES..D], j) as f32;
                // A zero scale keeps the search's levels, as in ggml.
                if d == 0.0 {
                    continue;
                }
                requantize_symmetric(xs, d, 4, lv);
            }
            // The high bit of element i goes to bit i/32 of hmask[i%32].
            let hmask = &mut out[HMASK..QS];
            hmask.fill(0);
            for (i, l) in levels.iter_mut().enumerate() {
                if *l > 3 {
                    hmask[i % 32] |= 1 << (i / 32);
                    *l -= 4;
                }
            }
            pack_2bit(&levels, &mut out[QS..SCALES]);
        })
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut super::Block| {
            let d = read_f16(b, D);
            let (hmask, packed) = (&b[HMASK..QS], &b[SCALES..D]);
            // Sub-block j (16 elements) sits at bits 2·((j/2)%4) of the 16 bytes starting at
            // 32·(j/8) + 16·(j%2) of qs, with its high bits at bit j/2 of the same hmask bytes.
            for (j, y) in y.chunks_exact_mut(16).enumerate() {
                let dl = d * scale(packed, j) as f32;
                let at = 16 * (j % 2);
                let q = &b[QS + 32 * (j / 8) + at..][..16];
                let h = &hmask[at..at + 16];
                let shift = 2 * ((j / 2) % 4);
                for ((y, &q), &h) in y.iter_mut().zip(q).zip(h) {
                    let low = i32::from((q >> shift) & 3);
                    let high = if h & (1 << (j / 2)) != 0 { 0 } else { 4 };
                    *y = dl * (low - high) as f32;
                }
            }
        })
    }
}
