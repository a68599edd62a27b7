//! What Q4_K and Q5_K share: eight sub-blocks of 32 with a 6-bit scale and a 6-bit min each,
//! stored as `d`, `dmin` (fp16) and the 12-byte packing in the first 16 bytes of the block. The
//! two types differ only in level range, the sweep of the search, and how the levels are stored.

use super::{read_f16, write_f16, Block, Levels};
use crate::rounding::kquant::{
    make_qkx_quants, make_qp_quants, requantize_affine, QkxParams, IMATRIX_SEARCH,
};
use crate::rounding::{nearest_int, sum, sum_squares};
use llq_types::QK_K;

/// Bytes of `d`, `dmin` and the packed scales at the start of a Q4_K or Q5_K block.
pub(super) const HEAD_BYTES: usize = 16;

/// The per-type knobs.
pub(super) struct Sub32 {
    /// Largest level (15 or 31).
    pub nmax: i32,
    /// The scale sweep without importance weights.
    pub search: QkxParams,
    /// Whether 6-bit levels from the importance path are clamped to 63 before packing: ggml does
    /// it for Q5_K but not Q4_K. It matters only if a sub-block scale came out negative.
    pub clamp_imatrix_scales: bool,
}

impl Sub32 {
    /// Find scales and mins, write the 16 head bytes, and return the levels requantized against
    /// the scales as stored.
    pub fn quantize(&self, x: &Block, importance: Option<&Block>, head: &mut [u8]) -> Levels {
        let mut levels = [0u8; QK_K];
        let mut scales = [0f32; 8];
        let mut mins = [0f32; 8];
        let mut ls = [0u8; 8];
        let mut lm = [0u8; 8];
        let mut weights = [0f32; 32];
        let subs = x.chunks_exact(32).zip(levels.chunks_exact_mut(32));
        let (d, dmin) = match importance {
            None => {
                let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
                for (j, (xs, lv)) in subs.enumerate() {
                    // Weigh each value by the sub-block's RMS plus its own magnitude.
                    let av_x = (sum_squares(xs) / 32.0).sqrt();
                    for (w, &v) in weights.iter_mut().zip(xs) {
                        *w = av_x + v.abs();
                    }
                    (scales[j], mins[j]) =
                        make_qkx_quants(self.nmax, xs, &weights, lv, &self.search);
                    if scales[j] > max_scale {
                        max_scale = scales[j];
                    }
                    if mins[j] > max_min {
                        max_min = mins[j];
                    }
                }
                let inv_scale = if max_scale > 0.0 {
                    63.0 / max_scale
                } else {
                    0.0
                };
                let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
                for j in 0..8 {
                    // ggml stores the rounded value in a byte (wrapping) before clamping.
                    ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
                    lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
                }
                (max_scale / 63.0, max_min / 63.0)
            }
            Some(qw) => {
                let sigma2 = 2.0 * sum_squares(x) / QK_K as f32;
                let mut sw = [0f32; 8];
                for (j, ((xs, lv), qw)) in subs.zip(qw.chunks_exact(32)).enumerate() {
                    for ((w, &v), &q) in weights.iter_mut().zip(xs).zip(qw) {
                        *w = q * (sigma2 + v * v).sqrt();
                    }
                    sw[j] = sum(&weights);
                    (scales[j], mins[j]) =
                        make_qkx_quants(self.nmax, xs, &weights, lv, &IMATRIX_SEARCH);
                }
                let d = make_qp_quants(63, &scales, &mut ls, &sw);
                let dmin = make_qp_quants(63, &mins, &mut lm, &sw);
                if self.clamp_imatrix_scales {
                    for l in ls.iter_mut().chain(lm.iter_mut()) {
                        *l = (*l).min(63);
                    }
                }
                (d, dmin)
            }
        };
        pack_scale_min_k4(&ls, &lm, &mut head[4..HEAD_BYTES]);
        let d = write_f16(head, 0, d);
        let dmin = write_f16(head, 2, dmin);
        for (j, (xs, lv)) in x
            .chunks_exact(32)
            .zip(levels.chunks_exact_mut(32))
            .enumerate()
        {
            let (sc, m) = get_scale_min_k4(j, &head[4..HEAD_BYTES]);
            let d = d * sc as f32;
            // A zero scale keeps the search's levels, as in ggml (they decode to -min anyway).
            if d == 0.0 {
                continue;
            }
            requantize_affine(xs, d, dmin * m as f32, self.nmax, lv);
        }
        levels
    }
}

/// Sub-block `j`'s scale and min (each multiplied by its fp16 super-block factor) from the head.
pub(super) fn scale_min(head: &[u8], j: usize) -> (f32, f32) {
    let (sc, m) = get_scale_min_k4(j, &head[4..HEAD_BYTES]);
    (read_f16(head, 0) * sc as f32, read_f16(head, 2) * m as f32)
}

/// Sub-block scale and min `j` (of 8) from the 12-byte 6-bit packing of Q4_K and Q5_K.
#[inline]
pub(super) fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The inverse of [`get_scale_min_k4`] for levels below 64; larger ones are truncated to bytes the
/// way ggml's packing truncates them.
fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8], q: &mut [u8]) {
    q[..4].copy_from_slice(&ls[..4]);
    q[4..8].copy_from_slice(&lm[..4]);
    for j in 4..8 {
        q[j + 4] = (ls[j] & 0xf) | (lm[j] << 4);
        q[j - 4] |= (ls[j] >> 4) << 6;
        q[j] |= (lm[j] >> 4) << 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_min_packing_round_trips() {
        let ls = [0, 1, 17, 63, 32, 5, 48, 63];
        let lm = [63, 2, 0, 31, 16, 62, 1, 40];
        let mut q = [0u8; 12];
        pack_scale_min_k4(&ls, &lm, &mut q);
        for j in 0..8 {
            assert_eq!(get_scale_min_k4(j, &q), (ls[j], lm[j]), "{j}");
        }
    }
}
