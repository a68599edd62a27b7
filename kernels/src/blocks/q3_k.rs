//! Q3_K: 256 values in 110 bytes: 32 bytes of high bits (`hmask`), 64 bytes of 2-bit low parts
//! (packed as `kquant::pack_2bit`), 12 bytes of packed 6-bit signed sub-block scales, then `d`
//! (fp16). Element `i` of sub-block `j` (16 elements each) is `d·(sc_j − 32)·(q − 4)`, `q` being
//! the low part plus 4 when the high bit is set. Dotted with Q8_K activations.

use super::kquant::{
    dot, pack_2bit, sigma2_lanes, unpack_2bit, Found, KQuant, KSums, Levels, SuperBlock,
};
use super::{dequantize_blocks, f16_at, q8_k, write_f16, BlockType, Codes};
use crate::dot::DotFn;
use crate::rounding::kquant::{make_q3_quants, requantize_symmetric};
use crate::rounding::lanes;
use crate::rounding::{make_qx_quants, nearest_int, signed_absmax, sum, sum_squares};
use llq_types::{GgmlType, QK_K};

/// The 32 bytes of high bits: that of element `i` is bit `i/32` of byte `i%32`.
pub(crate) const HMASK: usize = 0;
/// The 64 bytes of 2-bit low parts.
pub(crate) const QS: usize = 32;
/// The 12 bytes of packed sub-block scales.
pub(crate) const SC: usize = 96;
pub(crate) const D: usize = 108;

#[allow(non_camel_case_types)]
pub(crate) struct Q3_K;

impl BlockType for Q3_K {
    const TYPE: GgmlType = GgmlType::Q3_K;
    const FACTORS: &'static [usize] = &[D];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        lanes::encode_row::<Self>(src, dst, importance)
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut SuperBlock| {
            let d = f16_at(b, D);
            let scales = unpack_scales(&b[SC..D]);
            for (j, (y, &sc)) in y.chunks_exact_mut(16).zip(&scales).enumerate() {
                let dl = d * f32::from(sc);
                for (y, &q) in y.iter_mut().zip(&levels(b, j)) {
                    *y = dl * f32::from(q);
                }
            }
        })
    }

    const CODES: Option<Codes> = Some(Codes {
        max: 2 * ZERO as u8 - 1,
        map: code_map,
        write: write_codes,
    });
}

/// The levels are stored + 4.
const ZERO: i32 = 4;

/// Store levels 0..7: the high bit of each in `hmask`, the low two bits packed.
fn write_levels(mut levels: Levels, out: &mut [u8]) {
    let hmask = &mut out[HMASK..QS];
    hmask.fill(0);
    for (i, l) in levels.iter_mut().enumerate() {
        if *l > 3 {
            hmask[i % 32] |= 1 << (i / 32);
            *l -= 4;
        }
    }
    pack_2bit(&levels, &mut out[QS..SC]);
}

fn code_map(b: &[u8], zero: &mut [f32], step: &mut [f32]) {
    let d = f16_at(b, D);
    let subs = zero.chunks_exact_mut(16).zip(step.chunks_exact_mut(16));
    for ((z, s), &sc) in subs.zip(&unpack_scales(&b[SC..D])) {
        let dl = d * f32::from(sc);
        z.fill(-ZERO as f32 * dl);
        s.fill(dl);
    }
}

fn write_codes(codes: &[u8], out: &mut [u8]) {
    write_levels(codes.try_into().expect("a block of codes"), out)
}

/// Sub-block scale `j` (of 16, 6 bits, stored + 32): low nibbles in bytes 0–7 (low then high
/// half), the top two bits in bytes 8–11.
fn set_scale(packed: &mut [u8], j: usize, l: u8) {
    if j < 8 {
        packed[j] = l & 0xf;
    } else {
        packed[j - 8] |= (l & 0xf) << 4;
    }
    packed[8 + j % 4] |= (l >> 4) << (2 * (j / 4));
}

/// The 16 signed sub-block scales (−32..=31) from their 12 packed bytes: the inverse of
/// [`set_scale`].
#[inline(always)]
pub(crate) fn unpack_scales(packed: &[u8]) -> [i8; 16] {
    std::array::from_fn(|j| {
        let low = if j < 8 {
            packed[j] & 0xf
        } else {
            packed[j - 8] >> 4
        };
        let high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        (low | (high << 4)) as i8 - 32
    })
}

/// The 16 levels (−4..=3) of sub-block `j`: the 2-bit low part, minus 4 where the high bit
/// (bit `j/2` of `hmask[i]` for element `16·j + i`, `i` counted from `16·(j%2)`) is clear.
#[inline(always)]
fn levels(b: &[u8], j: usize) -> [i8; 16] {
    let h = &b[HMASK + 16 * (j % 2)..][..16];
    let mut out = [0i8; 16];
    for ((o, low), &h) in out.iter_mut().zip(unpack_2bit(&b[QS..SC], j)).zip(h) {
        *o = low as i8 - if h & (1 << (j / 2)) != 0 { 0 } else { 4 };
    }
    out
}

impl KQuant for Q3_K {
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

/// The scalar searches of a block's 16 sub-blocks: `make_q3_quants` (ggml's
/// `quantize_row_q3_K_ref`), or with importance `make_qx_quants` weighted by
/// importance·sqrt(2σ² + x²) (`quantize_row_q3_K_impl`).
fn search(x: &SuperBlock, qw: Option<&SuperBlock>) -> Found {
    let mut f = Found::new();
    let subs = x.chunks_exact(16).zip(f.levels.chunks_exact_mut(16));
    match qw {
        None => {
            for (j, (xs, lv)) in subs.enumerate() {
                f.scales[j] = make_q3_quants(4, xs.try_into().unwrap(), lv.try_into().unwrap());
            }
        }
        Some(qw) => {
            let mut weights = [0f32; 16];
            let sigma2 = 2.0 * sum_squares(x) / QK_K as f32;
            for (j, ((xs, lv), qw)) in subs.zip(qw.chunks_exact(16)).enumerate() {
                for ((w, &v), &q) in weights.iter_mut().zip(xs).zip(qw) {
                    *w = q * (sigma2 + v * v).sqrt();
                }
                f.sw[j] = sum(&weights);
                f.scales[j] = make_qx_quants(4, xs, Some(&weights), lv);
            }
        }
    }
    f
}

/// [`search`] of the blocks of `x` (at most `L / 16`, at least one), one sub-block per lane.
#[inline(always)]
fn search_lanes<const L: usize>(x: &[f32], qw: Option<&[f32]>, found: &mut [Found]) {
    let xt: [[f32; L]; 16] = lanes::gather(x);
    let mut levels = [[0u8; L]; 16];
    let mut sw = [0f32; L];
    let scales = match qw {
        None => lanes::make_q3_quants(4, &xt, &mut levels),
        Some(qw) => {
            let qt: [[f32; L]; 16] = lanes::gather(qw);
            let sigma2 = sigma2_lanes::<L, 16>(x, 2.0);
            let mut w = [[0f32; L]; 16];
            for ((w, xs), q) in w.iter_mut().zip(&xt).zip(&qt) {
                for k in 0..L {
                    w[k] = q[k] * (sigma2[k] + xs[k] * xs[k]).sqrt();
                }
            }
            sw = lanes::sum(&w);
            lanes::make_qx_quants(4, &xt, &w, &mut levels)
        }
    };
    Found::from_lanes(found, x.len() / QK_K, (&scales, &[0.0; L], &sw), &levels);
}

/// Write a block from what the searches found: the 6-bit scales (relative to the one of
/// largest magnitude without importance, fitted by weighted least squares with it), `d`, and
/// the levels requantized against the scales as stored, split into high bits and 2-bit parts.
fn write(x: &SuperBlock, qw: Option<&SuperBlock>, f: &Found, out: &mut [u8]) {
    let packed = &mut out[SC..D];
    packed.fill(0);
    let d = match qw {
        None => scales_plain(&f.scales, packed),
        Some(_) => scales_weighted(&f.scales, &f.sw, packed),
    };
    write_f16(out, D, d);
    let d = f16_at(out, D);
    let scales = unpack_scales(&out[SC..D]);
    let mut levels = f.levels;
    let subs = x.chunks_exact(16).zip(levels.chunks_exact_mut(16));
    for ((xs, lv), &sc) in subs.zip(&scales) {
        let d = d * f32::from(sc);
        // A zero scale keeps the search's levels, as in ggml.
        if d == 0.0 {
            continue;
        }
        requantize_symmetric(xs, d, 4, lv);
    }
    let hmask = &mut out[HMASK..QS];
    hmask.fill(0);
    for (i, l) in levels.iter_mut().enumerate() {
        if *l > 3 {
            hmask[i % 32] |= 1 << (i / 32);
            *l -= 4;
        }
    }
    pack_2bit(&levels, &mut out[QS..SC]);
}

/// ggml's `quantize_row_q3_K_ref`: each sub-block scale relative to the one of largest
/// magnitude, which maps to −32.
fn scales_plain(scales: &[f32; 16], packed: &mut [u8]) -> f32 {
    let (max_scale, _) = signed_absmax(scales);
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

/// ggml's `quantize_row_q3_K_impl`: the 6-bit scales fitted by weighted least squares.
fn scales_weighted(scales: &[f32; 16], sw: &[f32; 16], packed: &mut [u8]) -> f32 {
    let mut ls = [0u8; 16];
    let d = make_qx_quants(32, scales, Some(sw), &mut ls);
    for (j, &l) in ls.iter().enumerate() {
        set_scale(packed, j, l);
    }
    d
}

/// See [`KSums`]: levels −4..3, signed 6-bit scales, no mins.
fn isum(x: &[u8], y: &[u8]) -> KSums {
    let scales = unpack_scales(&x[SC..D]);
    let mut isum = 0;
    for (j, &sc) in scales.iter().enumerate() {
        let s: i32 = levels(x, j)
            .iter()
            .zip(q8_k::levels(y, 16 * j, 16))
            .map(|(&q, y)| i32::from(q) * y)
            .sum();
        isum += i32::from(sc) * s;
    }
    (isum, 0)
}

fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::Q3_K, (D, None), isum)
}
