//! What Q4_K and Q5_K share: eight sub-blocks of 32 with a 6-bit scale and a 6-bit min each,
//! stored as `d`, `dmin` (fp16) and a 12-byte packing of the scales and mins in the first 16
//! bytes of the block, then 4-bit levels (Q5_K puts its fifth bits in between): each 32 bytes
//! hold two sub-blocks, the first in the low nibbles, the second in the high ones. The two types
//! differ only in level range, the sweep of the search, and where their fifth bits are.

use super::kquant::{sigma2_lanes, Found, Levels, SuperBlock};
use super::{f16_at, q8_k, write_f16};
use crate::rounding::kquant::{
    make_qkx_quants, make_qp_quants, requantize_affine, QkxParams, IMATRIX_SEARCH,
};
use crate::rounding::lanes::{self, each};
use crate::rounding::{nearest_int, sum, sum_squares};
use llq_types::QK_K;

pub(crate) const D: usize = 0;
pub(crate) const DMIN: usize = 2;
/// The 12 bytes of packed scales and mins.
pub(crate) const SC: usize = 4;
/// Bytes of `d`, `dmin` and the packed scales at the start of a block.
pub(crate) const HEAD: usize = 16;

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
    /// The scalar searches of one block's sub-blocks.
    pub(super) fn search(&self, x: &SuperBlock, importance: Option<&SuperBlock>) -> Found {
        let mut f = Found::new();
        let mut weights = [0f32; 32];
        let subs = x.chunks_exact(32).zip(f.levels.chunks_exact_mut(32));
        match importance {
            None => {
                for (j, (xs, lv)) in subs.enumerate() {
                    // Weigh each value by the sub-block's RMS plus its own magnitude.
                    let av_x = (sum_squares(xs) / 32.0).sqrt();
                    for (w, &v) in weights.iter_mut().zip(xs) {
                        *w = av_x + v.abs();
                    }
                    (f.scales[j], f.mins[j]) =
                        make_qkx_quants(self.nmax, xs, &weights, lv, &self.search);
                }
            }
            Some(qw) => {
                let sigma2 = 2.0 * sum_squares(x) / QK_K as f32;
                for (j, ((xs, lv), qw)) in subs.zip(qw.chunks_exact(32)).enumerate() {
                    for ((w, &v), &q) in weights.iter_mut().zip(xs).zip(qw) {
                        *w = q * (sigma2 + v * v).sqrt();
                    }
                    f.sw[j] = sum(&weights);
                    (f.scales[j], f.mins[j]) =
                        make_qkx_quants(self.nmax, xs, &weights, lv, &IMATRIX_SEARCH);
                }
            }
        }
        f
    }

    /// [`Self::search`] of the blocks of `x` (at most `L / 8`, at least one), on lanes: one
    /// sub-block per lane.
    #[inline(always)]
    pub(super) fn search_lanes<const L: usize>(
        &self,
        x: &[f32],
        importance: Option<&[f32]>,
        found: &mut [Found],
    ) {
        let xt: [[f32; L]; 32] = lanes::gather(x);
        let mut w = [[0f32; L]; 32];
        let mut levels = [[0u8; L]; 32];
        let mut sw = [0f32; L];
        let (scales, mins) = match importance {
            None => {
                let ss = lanes::sum_squares(&xt);
                let av_x: [f32; L] = each(|k| (ss[k] / 32.0).sqrt());
                for (w, xs) in w.iter_mut().zip(&xt) {
                    for k in 0..L {
                        w[k] = av_x[k] + xs[k].abs();
                    }
                }
                lanes::make_qkx_quants(self.nmax, &xt, &w, &mut levels, &self.search)
            }
            Some(qw) => {
                let qt: [[f32; L]; 32] = lanes::gather(qw);
                let sigma2 = sigma2_lanes::<L, 32>(x, 2.0);
                for ((w, xs), q) in w.iter_mut().zip(&xt).zip(&qt) {
                    for k in 0..L {
                        w[k] = q[k] * (sigma2[k] + xs[k] * xs[k]).sqrt();
                    }
                }
                sw = lanes::sum(&w);
                lanes::make_qkx_quants(self.nmax, &xt, &w, &mut levels, &IMATRIX_SEARCH)
            }
        };
        Found::from_lanes(found, x.len() / QK_K, (&scales, &mins, &sw), &levels);
    }

    /// Quantize the found scales and mins, write the block: `d`, `dmin`, the packed scales and
    /// the levels requantized against the scales as stored.
    pub(super) fn write(
        &self,
        x: &SuperBlock,
        f: &Found,
        weighted: bool,
        out: &mut [u8],
        at: LevelsAt,
    ) {
        let mut levels = f.levels;
        let scales: &[f32; 8] = f.scales[..8].try_into().expect("8 sub-blocks");
        let mins: &[f32; 8] = f.mins[..8].try_into().expect("8 sub-blocks");
        let sw: &[f32; 8] = f.sw[..8].try_into().expect("8 sub-blocks");
        let mut ls = [0u8; 8];
        let mut lm = [0u8; 8];
        let (d, dmin) = if !weighted {
            let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
            for (&s, &m) in scales.iter().zip(mins) {
                if s > max_scale {
                    max_scale = s;
                }
                if m > max_min {
                    max_min = m;
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
        } else {
            let d = make_qp_quants(63, scales, &mut ls, sw);
            let dmin = make_qp_quants(63, mins, &mut lm, sw);
            if self.clamp_imatrix_scales {
                for l in ls.iter_mut().chain(lm.iter_mut()) {
                    *l = (*l).min(63);
                }
            }
            (d, dmin)
        };
        let head = &mut out[..HEAD];
        pack_scale_min(&ls, &lm, &mut head[SC..HEAD]);
        write_f16(head, D, d);
        write_f16(head, DMIN, dmin);
        let (d, dmin) = (f16_at(head, D), f16_at(head, DMIN));
        let (sc, mn) = unpack_scale_min(&head[SC..HEAD]);
        let subs = x.chunks_exact(32).zip(levels.chunks_exact_mut(32));
        for (((xs, lv), &sc), &m) in subs.zip(&sc).zip(&mn) {
            let d = d * sc as f32;
            // A zero scale keeps the search's levels, as in ggml (they decode to -min anyway).
            if d == 0.0 {
                continue;
            }
            requantize_affine(xs, d, dmin * m as f32, self.nmax, lv);
        }
        let (rest, qs) = out.split_at_mut(at.qs);
        pack_levels(&levels, qs, at.qh.map(|qh| &mut rest[qh..qh + 32]));
    }
}

/// Pack eight 6-bit scales `ls` and mins `lm` into 12 bytes: scales and mins 0..4 in the low 6
/// bits of bytes 0..4 and 4..8, those of 4..8 in the nibbles of bytes 8..12 with their top two
/// bits in the top bits of bytes 0..8. Levels of 64 and more are truncated to bytes the way
/// ggml's packing truncates them.
fn pack_scale_min(ls: &[u8; 8], lm: &[u8; 8], q: &mut [u8]) {
    q[..4].copy_from_slice(&ls[..4]);
    q[4..8].copy_from_slice(&lm[..4]);
    for j in 4..8 {
        q[j + 4] = (ls[j] & 0xf) | (lm[j] << 4);
        q[j - 4] |= (ls[j] >> 4) << 6;
        q[j] |= (lm[j] >> 4) << 6;
    }
}

/// The eight 6-bit scales and mins from their 12 packed bytes (the inverse of
/// [`pack_scale_min`], ggml's `get_scale_min_k4`).
#[inline]
pub(crate) fn unpack_scale_min(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let q: &[u8; 12] = q[..12].try_into().expect("12 packed bytes");
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        sc[j] = q[j] & 63;
        mn[j] = q[j + 4] & 63;
        sc[j + 4] = (q[j + 8] & 0xf) | ((q[j] >> 6) << 4);
        mn[j + 4] = (q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4);
    }
    (sc, mn)
}

/// GPTQ's map of a block: `zero = −dmin·m_j`, `step = d·sc_j` over sub-block j.
pub(super) fn code_map(b: &[u8], zero: &mut [f32], step: &mut [f32]) {
    let (d, dmin) = (f16_at(b, D), f16_at(b, DMIN));
    let (sc, mn) = unpack_scale_min(&b[SC..HEAD]);
    let subs = zero.chunks_exact_mut(32).zip(step.chunks_exact_mut(32));
    for (((z, s), &sc), &m) in subs.zip(&sc).zip(&mn) {
        z.fill(-(dmin * m as f32));
        s.fill(d * sc as f32);
    }
}

/// Write the levels (below 32) as nibbles into `qs` and, for Q5_K, their fifth bits into `qh`:
/// that of element `i` of sub-block `j` is bit `j` of `qh[i]`.
pub(super) fn pack_levels(levels: &Levels, qs: &mut [u8], mut qh: Option<&mut [u8]>) {
    if let Some(qh) = qh.as_deref_mut() {
        qh.fill(0);
    }
    for (c, (l, q)) in levels
        .chunks_exact(64)
        .zip(qs.chunks_exact_mut(32))
        .enumerate()
    {
        for (i, byte) in q.iter_mut().enumerate() {
            let (lo, hi) = (l[i], l[i + 32]);
            if let Some(qh) = qh.as_deref_mut() {
                qh[i] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
            }
            *byte = (lo & 0xf) | ((hi & 0xf) << 4);
        }
    }
}

/// Where a type's levels are in its block: nibbles at `qs`, fifth bits (Q5_K) at `qh`.
#[derive(Clone, Copy)]
pub(super) struct LevelsAt {
    pub qs: usize,
    pub qh: Option<usize>,
}

/// The levels of sub-blocks `2c` and `2c + 1` (the inverse of [`pack_levels`]), as 32 pairs:
/// both live in the same 32 bytes, one in the low nibbles, the other in the high ones.
#[inline(always)]
pub(super) fn level_pairs(b: &[u8], at: LevelsAt, c: usize) -> impl Iterator<Item = (u8, u8)> + '_ {
    let q = &b[at.qs + 32 * c..][..32];
    let qh = at.qh.map(|qh| &b[qh..qh + 32]);
    q.iter().enumerate().map(move |(i, &q)| {
        let (lo, hi) = (q & 0xf, q >> 4);
        match qh {
            None => (lo, hi),
            Some(qh) => (
                lo | ((qh[i] >> (2 * c)) & 1) << 4,
                hi | ((qh[i] >> (2 * c + 1)) & 1) << 4,
            ),
        }
    })
}

/// Decode a block: `d·sc_j·q − dmin·m_j`.
#[inline]
pub(super) fn decode(b: &[u8], y: &mut SuperBlock, at: LevelsAt) {
    let (d, dmin) = (f16_at(b, D), f16_at(b, DMIN));
    let (sc, mn) = unpack_scale_min(&b[SC..HEAD]);
    for (c, y) in y.chunks_exact_mut(64).enumerate() {
        let (d1, m1) = (d * sc[2 * c] as f32, dmin * mn[2 * c] as f32);
        let (d2, m2) = (d * sc[2 * c + 1] as f32, dmin * mn[2 * c + 1] as f32);
        let (lo, hi) = y.split_at_mut(32);
        for ((lo, hi), (q1, q2)) in lo.iter_mut().zip(hi).zip(level_pairs(b, at, c)) {
            *lo = d1 * q1 as f32 - m1;
            *hi = d2 * q2 as f32 - m2;
        }
    }
}

/// The integer sums of a block against a Q8_K block (see [`super::kquant::KSums`]): each min
/// covers 32 elements, two of the activations' 16-element sums.
#[inline]
pub(super) fn isum(x: &[u8], y: &[u8], at: LevelsAt) -> (i32, i32) {
    let (sc, mn) = unpack_scale_min(&x[SC..HEAD]);
    let (mut isum, mut msum) = (0, 0);
    for c in 0..4 {
        // One pass per sub-block (the other half of each pair unused): the compiler
        // vectorizes two plain sums, not one sum of pairs.
        let s1: i32 = level_pairs(x, at, c)
            .zip(q8_k::levels(y, 64 * c, 32))
            .map(|((q, _), y)| i32::from(q) * y)
            .sum();
        let s2: i32 = level_pairs(x, at, c)
            .zip(q8_k::levels(y, 64 * c + 32, 32))
            .map(|((_, q), y)| i32::from(q) * y)
            .sum();
        isum += i32::from(sc[2 * c]) * s1 + i32::from(sc[2 * c + 1]) * s2;
    }
    for (j, &m) in mn.iter().enumerate() {
        msum += i32::from(m) * (q8_k::bsum(y, 2 * j) + q8_k::bsum(y, 2 * j + 1));
    }
    (isum, msum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_min_packing_round_trips() {
        let ls = [0, 1, 17, 63, 32, 5, 48, 63];
        let lm = [63, 2, 0, 31, 16, 62, 1, 40];
        let mut q = [0u8; 12];
        pack_scale_min(&ls, &lm, &mut q);
        assert_eq!(unpack_scale_min(&q), (ls, lm));
    }

    #[test]
    fn level_packing_round_trips() {
        let want: Levels = std::array::from_fn(|i| ((i * 13 + i / 32) % 32) as u8);
        let mut b = [0u8; 176];
        let (qh, qs) = b[HEAD..].split_at_mut(32);
        pack_levels(&want, qs, Some(qh));
        let at = LevelsAt {
            qs: HEAD + 32,
            qh: Some(HEAD),
        };
        for c in 0..4 {
            let (lo, hi): (Vec<u8>, Vec<u8>) = level_pairs(&b, at, c).unzip();
            assert_eq!(lo, want[64 * c..64 * c + 32], "{c}");
            assert_eq!(hi, want[64 * c + 32..64 * c + 64], "{c}");
        }
    }
}
