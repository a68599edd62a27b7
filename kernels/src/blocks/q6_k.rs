//! Q6_K: 256 values in 210 bytes: 128 bytes of low nibbles (`ql`), 64 bytes of high bit pairs
//! (`qh`), 16 signed 8-bit sub-block scales, then `d` (fp16). Element `i` of sub-block `j` (16
//! elements each) is `d·sc_j·(q − 32)`. Dotted with Q8_K activations.
//!
//! Each half of 128 elements uses 64 bytes of `ql` and 32 of `qh`: byte `l` of `ql` holds
//! elements `l` (low nibble) and `l+64` (high), byte `l+32` holds `l+32` and `l+96`, and `qh[l]`
//! their top two bits in that order.

use super::kquant::{dot, Found, KQuant, KSums, Levels, SuperBlock};
use super::{dequantize_blocks, f16_at, q8_k, write_f16, BlockType, Codes};
use crate::dot::DotFn;
use crate::rounding::kquant::requantize_symmetric;
use crate::rounding::lanes;
use crate::rounding::{make_qx_quants, nearest_int, signed_absmax, GROUP_MAX_EPS};
use llq_types::{GgmlType, QK_K};

/// The 128 bytes of low nibbles.
pub(crate) const QL: usize = 0;
/// The 64 bytes of high bit pairs.
pub(crate) const QH: usize = 128;
/// The 16 signed sub-block scales.
pub(crate) const SC: usize = 192;
pub(crate) const D: usize = 208;

/// The levels are stored + 32.
const ZERO: i32 = 32;

#[allow(non_camel_case_types)]
pub(crate) struct Q6_K;

impl BlockType for Q6_K {
    const TYPE: GgmlType = GgmlType::Q6_K;
    const FACTORS: &'static [usize] = &[D];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        lanes::encode_row::<Self>(src, dst, importance)
    }

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut SuperBlock| {
            let d = f16_at(b, D);
            let sc = &b[SC..D];
            for (quarter, y) in y.chunks_exact_mut(32).enumerate() {
                let q = quarter_levels(b, quarter);
                for (half, (y, q)) in y.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
                    let s = f32::from(sc[2 * quarter + half] as i8);
                    for (y, &q) in y.iter_mut().zip(q) {
                        *y = d * s * (i32::from(q) - ZERO) as f32;
                    }
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

fn write_levels(levels: &Levels, out: &mut [u8]) {
    let (ql, rest) = out.split_at_mut(QH);
    pack(levels, ql, &mut rest[..SC - QH]);
}

fn code_map(b: &[u8], zero: &mut [f32], step: &mut [f32]) {
    let d = f16_at(b, D);
    let subs = zero.chunks_exact_mut(16).zip(step.chunks_exact_mut(16));
    for ((z, s), &sc) in subs.zip(&b[SC..D]) {
        let dl = d * f32::from(sc as i8);
        z.fill(-ZERO as f32 * dl);
        s.fill(dl);
    }
}

fn write_codes(codes: &[u8], out: &mut [u8]) {
    write_levels(codes.try_into().expect("a block of codes"), out)
}

impl KQuant for Q6_K {
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

/// The scalar searches of a block's 16 sub-blocks (ggml's `quantize_row_q6_K_ref`, or `_impl`
/// with importance, which only swaps the search's default `x²` weights for the importance).
fn search(x: &SuperBlock, qw: Option<&SuperBlock>) -> Found {
    let mut f = Found::new();
    let subs = x.chunks_exact(16).zip(f.levels.chunks_exact_mut(16));
    for (j, (xs, lv)) in subs.enumerate() {
        let w = qw.map(|qw| &qw[16 * j..16 * j + 16]);
        f.scales[j] = make_qx_quants(ZERO, xs, w, lv);
    }
    f
}

/// [`search`] of the blocks of `x` (at most `L / 16`, at least one), one sub-block per lane.
#[inline(always)]
fn search_lanes<const L: usize>(x: &[f32], qw: Option<&[f32]>, found: &mut [Found]) {
    let xt: [[f32; L]; 16] = lanes::gather(x);
    let w: [[f32; L]; 16] = match qw {
        Some(qw) => lanes::gather(qw),
        None => xt.map(|row| row.map(|v| v * v)),
    };
    let mut levels = [[0u8; L]; 16];
    let scales = lanes::make_qx_quants(ZERO, &xt, &w, &mut levels);
    let zeros = [0.0; L];
    Found::from_lanes(found, x.len() / QK_K, (&scales, &zeros, &zeros), &levels);
}

/// Write a block from what the searches found: the 8-bit scales relative to the one of largest
/// magnitude (which maps to −128), `d`, and the levels requantized against the scales as
/// stored.
fn write(x: &SuperBlock, _: Option<&SuperBlock>, f: &Found, out: &mut [u8]) {
    let (max_scale, max_abs_scale) = signed_absmax(&f.scales);
    if max_abs_scale < GROUP_MAX_EPS {
        out.fill(0);
        return;
    }
    let iscale = -128.0 / max_scale;
    write_f16(out, D, 1.0 / iscale);
    let d = f16_at(out, D);
    for (sc, &s) in out[SC..D].iter_mut().zip(&f.scales) {
        // Clamped above only, then narrowed to a signed byte, as ggml does.
        *sc = nearest_int(iscale * s).min(127) as i8 as u8;
    }
    let mut levels = f.levels;
    let subs = x.chunks_exact(16).zip(levels.chunks_exact_mut(16));
    for ((xs, lv), &sc) in subs.zip(&out[SC..D]) {
        let d = d * f32::from(sc as i8);
        // A zero scale keeps the search's levels, as in ggml.
        if d == 0.0 {
            continue;
        }
        requantize_symmetric(xs, d, ZERO, lv);
    }
    let (ql, rest) = out.split_at_mut(QH);
    pack(&levels, ql, &mut rest[..SC - QH]);
}

/// Write levels (below 64) as `ql` and `qh` (see the module doc).
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

/// The 256 levels (0..63, stored + 32) of a block: the inverse of [`pack`].
#[inline(always)]
pub(crate) fn levels(b: &[u8]) -> Levels {
    let mut out = [0u8; QK_K];
    for (quarter, o) in out.chunks_exact_mut(32).enumerate() {
        o.copy_from_slice(&quarter_levels(b, quarter));
    }
    out
}

/// Levels `32·quarter..32·quarter + 32`, eight at a time in a u64: elements `128n + 32k + i`
/// (i < 32) take the low or high nibbles (k < 2 or not) of `ql[64n + 32(k % 2) + i]` and bits
/// `2k..2k + 2` of `qh[32n + i]`.
#[inline(always)]
fn quarter_levels(b: &[u8], quarter: usize) -> [u8; 32] {
    const NIB: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    const TWO: u64 = 0x0303_0303_0303_0303;
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let (n, k) = (quarter / 4, quarter % 4);
    let mut out = [0u8; 32];
    for (c, o) in out.chunks_exact_mut(8).enumerate() {
        let i = 8 * c;
        let low = (word(QL + 64 * n + 32 * (k % 2) + i) >> (4 * (k / 2))) & NIB;
        let high = (word(QH + 32 * n + i) >> (2 * k)) & TWO;
        o.copy_from_slice(&(low | (high << 4)).to_le_bytes());
    }
    out
}

/// See [`KSums`]: levels 0..63 minus 32, signed 8-bit scales for 16 sub-blocks of 16, no mins.
fn isum(x: &[u8], y: &[u8]) -> KSums {
    let levels = levels(x);
    let mut isum = 0;
    for (j, (q, &sc)) in levels.chunks_exact(16).zip(&x[SC..D]).enumerate() {
        let s: i32 = q
            .iter()
            .zip(q8_k::levels(y, 16 * j, 16))
            .map(|(&q, y)| (i32::from(q) - ZERO) * y)
            .sum();
        isum += i32::from(sc as i8) * s;
    }
    (isum, 0)
}

fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::Q6_K, (D, None), isum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_packing_round_trips() {
        let want: Levels = std::array::from_fn(|i| ((i * 29 + i / 64) % 64) as u8);
        let mut b = [0u8; 210];
        let (ql, rest) = b.split_at_mut(QH);
        pack(&want, ql, &mut rest[..SC - QH]);
        assert_eq!(levels(&b), want);
    }
}
