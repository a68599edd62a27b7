//! Q2_K: 256 values in 84 bytes: 16 bytes of sub-block scales (low nibble) and mins (high
//! nibble), 64 bytes of 2-bit levels (packed as `kquant::pack_2bit`), then `d` and `dmin`
//! (fp16). Element `i` of sub-block `j` (16 elements each) is `d·sc_j·q − dmin·m_j`. Dotted with
//! Q8_K activations.

use super::kquant::{dot, pack_2bit, sigma2_lanes, unpack_2bit, Found, KQuant, KSums, SuperBlock};
use super::{dequantize_blocks, f16_at, q8_k, write_f16, BlockType, Codes};
use crate::dot::DotFn;
use crate::rounding::kquant::{
    make_qkx_quants, make_qp_quants, requantize_affine, QkxParams, IMATRIX_SEARCH,
};
use crate::rounding::lanes;
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
        lanes::encode_row::<Self>(src, dst, importance)
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

impl KQuant for Q2_K {
    const SUBS: usize = 16;

    fn search(x: &SuperBlock, importance: Option<&SuperBlock>) -> Found {
        search(x, importance)
    }

    #[inline(always)]
    fn search_lanes<const L: usize>(x: &[f32], importance: Option<&[f32]>, found: &mut [Found]) {
        search_lanes::<L>(x, importance, found)
    }

    fn write(x: &SuperBlock, importance: Option<&SuperBlock>, found: &Found, out: &mut [u8]) {
        write(x, importance, found, out)
    }
}

/// The scalar searches of a block's 16 sub-blocks: weights `|x|` (ggml's
/// `quantize_row_q2_K_ref`), or importance·sqrt(σ² + x²) (`quantize_row_q2_K_impl`).
fn search(x: &SuperBlock, qw: Option<&SuperBlock>) -> Found {
    let mut f = Found::new();
    let mut weights = [0f32; 16];
    let subs = x.chunks_exact(16).zip(f.levels.chunks_exact_mut(16));
    match qw {
        None => {
            for (j, (xs, lv)) in subs.enumerate() {
                for (w, &v) in weights.iter_mut().zip(xs) {
                    *w = v.abs();
                }
                (f.scales[j], f.mins[j]) = make_qkx_quants(3, xs, &weights, lv, &SEARCH);
            }
        }
        Some(qw) => {
            let sigma2 = sum_squares(x) / QK_K as f32;
            for (j, ((xs, lv), qw)) in subs.zip(qw.chunks_exact(16)).enumerate() {
                for ((w, &v), &q) in weights.iter_mut().zip(xs).zip(qw) {
                    *w = q * (sigma2 + v * v).sqrt();
                }
                f.sw[j] = sum(&weights);
                (f.scales[j], f.mins[j]) = make_qkx_quants(3, xs, &weights, lv, &IMATRIX_SEARCH);
            }
        }
    }
    f
}

/// [`search`] of the blocks of `x` (at most `L / 16`, at least one), one sub-block per lane.
#[inline(always)]
fn search_lanes<const L: usize>(x: &[f32], qw: Option<&[f32]>, found: &mut [Found]) {
    let xt: [[f32; L]; 16] = lanes::gather(x);
    let mut w = [[0f32; L]; 16];
    let mut levels = [[0u8; L]; 16];
    let mut sw = [0f32; L];
    let (scales, mins) = match qw {
        None => {
            for (w, xs) in w.iter_mut().zip(&xt) {
                for k in 0..L {
                    w[k] = xs[k].abs();
                }
            }
            lanes::make_qkx_quants(3, &xt, &w, &mut levels, &SEARCH)
        }
        Some(qw) => {
            let qt: [[f32; L]; 16] = lanes::gather(qw);
            let sigma2 = sigma2_lanes::<L, 16>(x, 1.0);
            for ((w, xs), q) in w.iter_mut().zip(&xt).zip(&qt) {
                for k in 0..L {
                    w[k] = q[k] * (sigma2[k] + xs[k] * xs[k]).sqrt();
                }
            }
            sw = lanes::sum(&w);
            lanes::make_qkx_quants(3, &xt, &w, &mut levels, &IMATRIX_SEARCH)
        }
    };
    Found::from_lanes(found, x.len() / QK_K, (&scales, &mins, &sw), &levels);
}

/// Write a block from what the searches found: the 4-bit scale and min levels (each over the
/// largest one without importance, fitted by weighted least squares with it), `d`, `dmin`, and
/// the levels requantized against the scales as stored.
fn write(x: &SuperBlock, qw: Option<&SuperBlock>, f: &Found, out: &mut [u8]) {
    let s = match qw {
        None => scales_plain(&f.scales, &f.mins),
        Some(_) => scales_weighted(&f.scales, &f.mins, &f.sw),
    };
    out[SC..QS].copy_from_slice(&s.packed);
    write_f16(out, D, s.d);
    write_f16(out, DMIN, s.dmin);
    let (d, dmin) = (f16_at(out, D), f16_at(out, DMIN));
    let mut levels = f.levels;
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
}

/// Sub-block scales (low nibble) and mins (high nibble) and their fp16 factors (unrounded).
struct Scales {
    packed: [u8; 16],
    d: f32,
    dmin: f32,
}

/// ggml's `quantize_row_q2_K_ref`: each 4-bit level is the sub-block value over the largest one.
fn scales_plain(scales: &[f32; 16], mins: &[f32; 16]) -> Scales {
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for (&s, &m) in scales.iter().zip(mins) {
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let mut packed = [0u8; 16];
    let mut d = 0.0;
    if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for (p, &s) in packed.iter_mut().zip(scales) {
            // Stored into a byte unclamped (wrapping), as ggml does.
            *p = nearest_int(iscale * s) as u8;
        }
        d = max_scale / Q4SCALE;
    }
    let mut dmin = 0.0;
    if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for (p, &m) in packed.iter_mut().zip(mins) {
            *p |= (nearest_int(iscale * m) << 4) as u8;
        }
        dmin = max_min / Q4SCALE;
    }
    Scales { packed, d, dmin }
}

/// ggml's `quantize_row_q2_K_impl`: the 4-bit levels fitted by weighted least squares.
fn scales_weighted(scales: &[f32; 16], mins: &[f32; 16], sw: &[f32; 16]) -> Scales {
    let mut ls = [0u8; 16];
    let mut lm = [0u8; 16];
    let d = make_qp_quants(15, scales, &mut ls, sw);
    let dmin = make_qp_quants(15, mins, &mut lm, sw);
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
