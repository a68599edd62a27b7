//! Q2_K: 256 values in 84 bytes: 16 bytes of sub-block scales (low nibble) and mins (high
//! nibble), 64 bytes of 2-bit levels (packed as `kquant::pack_2bit`), then `d` and `dmin`
//! (fp16). Element `i` of sub-block `j` (16 elements each) is `d·sc_j·q − dmin·m_j`. Dotted with
//! Q8_K activations.

use super::kquant::{dot, pack_2bit, unpack_2bit, KSums, Levels, SuperBlock};
use super::{dequantize_blocks, f16_at, q8_k, quantize_blocks, write_f16, BlockType, Codes};
use crate::dot::DotFn;
use crate::rounding::kquant::{
    make_qkx_quants, make_qp_quants, requantize_affine, QkxParams, IMATRIX_SEARCH,
};
use crate::rounding::{nearest_int, sum, sum_squares};
use llq_types::{GgmlType, QK_K};

/// The 16 bytes of sub-block scales and mins.
pub(crate) const SC: usize = 0;
/// The 64 bytes of 2-bit levels.
pub(crate) const QS: usize = 16;
pub(crate) const D: usize = 80;
pub(crate) const DMIN: usize = 82;

#[allow(non_camel_case_types)]
pub(crate) struct Q2_K;

impl BlockType for Q2_K {
    const TYPE: GgmlType = GgmlType::Q2_K;
    const FACTORS: &'static [usize] = &[D, DMIN];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        quantize_blocks(Self::TYPE, src, dst, importance, |x, qw, out| {
            let mut levels = [0u8; QK_K];
            let s = match qw {
                None => scales_plain(x, &mut levels),
                Some(qw) => scales_weighted(x, qw, &mut levels),
            };
            out[SC..QS].copy_from_slice(&s.packed);
            write_f16(out, D, s.d);
            write_f16(out, DMIN, s.dmin);
            let (d, dmin) = (f16_at(out, D), f16_at(out, DMIN));
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
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut SuperBlock| {
            let (d, dmin) = (f16_at(b, D), f16_at(b, DMIN));
            for (j, (y, &sc)) in y.chunks_exact_mut(16).zip(&b[SC..QS]).enumerate() {
                let dl = d * (sc & 0xf) as f32;
                let ml = dmin * (sc >> 4) as f32;
                for (y, q) in y.iter_mut().zip(unpack_2bit(&b[QS..D], j)) {
                    *y = dl * q as f32 - ml;
                }
            }
        })
    }

    const CODES: Option<Codes> = Some(Codes {
        max: 3,
        map: code_map,
        write: write_codes,
    });
}

fn code_map(b: &[u8], zero: &mut [f32], step: &mut [f32]) {
    let (d, dmin) = (f16_at(b, D), f16_at(b, DMIN));
    let subs = zero.chunks_exact_mut(16).zip(step.chunks_exact_mut(16));
    for ((z, s), &sc) in subs.zip(&b[SC..QS]) {
        z.fill(-(dmin * (sc >> 4) as f32));
        s.fill(d * (sc & 0xf) as f32);
    }
}

fn write_codes(codes: &[u8], out: &mut [u8]) {
    pack_2bit(codes.try_into().expect("a block of codes"), &mut out[QS..D]);
}

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
fn scales_plain(x: &SuperBlock, levels: &mut Levels) -> Scales {
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
fn scales_weighted(x: &SuperBlock, qw: &SuperBlock, levels: &mut Levels) -> Scales {
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

/// See [`KSums`]: levels 0..3 in 16 sub-blocks of 16, a 4-bit scale and min each.
fn isum(x: &[u8], y: &[u8]) -> KSums {
    let (mut isum, mut msum) = (0, 0);
    // Sub-blocks in pairs (the same bytes and shift, the second 16 bytes on): the compiler
    // keeps the shift out of the inner loops that way, which made this 1.5x faster.
    for g in 0..8 {
        for j in [2 * g, 2 * g + 1] {
            let sc = x[SC + j];
            let s: i32 = unpack_2bit(&x[QS..D], j)
                .zip(q8_k::levels(y, 16 * j, 16))
                .map(|(q, y)| i32::from(q) * y)
                .sum();
            isum += i32::from(sc & 0xf) * s;
            msum += i32::from(sc >> 4) * q8_k::bsum(y, j);
        }
    }
    (isum, msum)
}

fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::Q2_K, (D, Some(DMIN)), isum)
}
