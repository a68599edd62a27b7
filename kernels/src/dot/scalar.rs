//! Scalar reference dot products, with ggml's semantics: for each block an exact integer sum of
//! level products, then one float scaling per block, accumulated in f32 in block order. The float
//! types multiply in f32 and accumulate in f64, as ggml's scalar `ggml_vec_dot_f16` does.
//!
//! The block-level integer sums are public so tests can check SIMD kernels against them exactly.

use super::{check, unpack_k4_scales, unpack_q3k_scales, DotTable, Kernel};
use crate::float::f16_bits_to_f32;
use llq_types::GgmlType::{self, *};
use std::sync::OnceLock;

/// All 65536 fp16 values as f32 (256 KiB, built on first use): without F16C a table lookup is
/// far cheaper than converting bit by bit, as in ggml's scalar code.
fn f16_table() -> &'static [f32] {
    static T: OnceLock<Vec<f32>> = OnceLock::new();
    T.get_or_init(|| (0..=u16::MAX).map(f16_bits_to_f32).collect())
}

#[inline]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_table()[usize::from(u16::from_le_bytes([b[at], b[at + 1]]))]
}

#[inline]
pub(crate) fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn i8s(b: &[u8]) -> impl Iterator<Item = i32> + '_ {
    b.iter().map(|&v| i32::from(v as i8))
}

/// Σ (q−8)·y over a Q4_0 block (18 bytes) and a Q8_0 block (34 bytes).
pub fn isum_q4_0(x: &[u8], y: &[u8]) -> i32 {
    let (qs, ys) = (&x[2..18], &y[2..34]);
    (0..16)
        .map(|j| {
            let lo = i32::from(qs[j] & 0xf) - 8;
            let hi = i32::from(qs[j] >> 4) - 8;
            lo * i32::from(ys[j] as i8) + hi * i32::from(ys[j + 16] as i8)
        })
        .sum()
}

/// Σ q·y over a Q4_1 block (20 bytes, unsigned levels) and a Q8_1 block (36 bytes).
pub fn isum_q4_1(x: &[u8], y: &[u8]) -> i32 {
    let (qs, ys) = (&x[4..20], &y[4..36]);
    (0..16)
        .map(|j| {
            i32::from(qs[j] & 0xf) * i32::from(ys[j] as i8)
                + i32::from(qs[j] >> 4) * i32::from(ys[j + 16] as i8)
        })
        .sum()
}

/// The 32 five-bit levels of a Q5 block from `qh` (LE u32) and the 16 nibble bytes.
#[inline]
fn q5_levels(qh: &[u8], qs: &[u8]) -> [i32; 32] {
    let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    std::array::from_fn(|j| {
        let nib = if j < 16 { qs[j] & 0xf } else { qs[j - 16] >> 4 };
        i32::from(nib) | (((h >> j) & 1) as i32) << 4
    })
}

/// Σ (q−16)·y over a Q5_0 block (22 bytes) and a Q8_0 block.
pub fn isum_q5_0(x: &[u8], y: &[u8]) -> i32 {
    let q = q5_levels(&x[2..6], &x[6..22]);
    q.iter()
        .zip(i8s(&y[2..34]))
        .map(|(&q, y)| (q - 16) * y)
        .sum()
}

/// Σ q·y over a Q5_1 block (24 bytes) and a Q8_1 block.
pub fn isum_q5_1(x: &[u8], y: &[u8]) -> i32 {
    let q = q5_levels(&x[4..8], &x[8..24]);
    q.iter().zip(i8s(&y[4..36])).map(|(&q, y)| q * y).sum()
}

/// Σ x·y over two Q8_0 blocks.
pub fn isum_q8_0(x: &[u8], y: &[u8]) -> i32 {
    i8s(&x[2..34]).zip(i8s(&y[2..34])).map(|(a, b)| a * b).sum()
}

/// K-quant super-block against a Q8_K block: `(Σ_j sc_j·Σ q·y, Σ_j m_j·bsum_j)`, the scaled level
/// products and the min correction, both exact. The block's value is
/// `d·y.d·isum − dmin·y.d·msum` (Q3_K and Q6_K have no min: `msum` = 0, their offset is inside
/// `isum`).
pub type KSums = (i32, i32);

#[inline]
fn q8k_qs(y: &[u8]) -> &[u8] {
    &y[4..260]
}

#[inline]
fn q8k_bsum(y: &[u8], j: usize) -> i32 {
    i32::from(i16::from_le_bytes([y[260 + 2 * j], y[261 + 2 * j]]))
}

/// Q2_K (84 bytes): levels 0..3 in 16 sub-blocks of 16, 4-bit scale and min each.
pub fn isum_q2_k(x: &[u8], y: &[u8]) -> KSums {
    let ys = q8k_qs(y);
    let (mut isum, mut msum) = (0, 0);
    for j in 0..16 {
        let sc = x[j];
        let q = &x[16 + 32 * (j / 8) + 16 * (j % 2)..][..16];
        let shift = 2 * ((j / 2) % 4);
        let s: i32 = q
            .iter()
            .zip(i8s(&ys[16 * j..16 * j + 16]))
            .map(|(&q, y)| i32::from((q >> shift) & 3) * y)
            .sum();
        isum += i32::from(sc & 0xf) * s;
        msum += i32::from(sc >> 4) * q8k_bsum(y, j);
    }
    (isum, msum)
}

/// Q3_K (110 bytes): levels −4..3 (2 low bits + inverted high bit), signed 6-bit scales.
pub fn isum_q3_k(x: &[u8], y: &[u8]) -> KSums {
    let ys = q8k_qs(y);
    let scales = unpack_q3k_scales(&x[96..108]);
    let mut isum = 0;
    for (j, &sc) in scales.iter().enumerate() {
        let at = 16 * (j % 2);
        let q = &x[32 + 32 * (j / 8) + at..][..16];
        let h = &x[at..at + 16];
        let shift = 2 * ((j / 2) % 4);
        let s: i32 = q
            .iter()
            .zip(h)
            .zip(i8s(&ys[16 * j..16 * j + 16]))
            .map(|((&q, &h), y)| {
                let low = i32::from((q >> shift) & 3);
                let high = if h & (1 << (j / 2)) != 0 { 0 } else { 4 };
                (low - high) * y
            })
            .sum();
        isum += i32::from(sc) * s;
    }
    (isum, 0)
}

/// Q4_K (144 bytes) and Q5_K (176 bytes, `five`): 8 sub-blocks of 32, 6-bit scale and min each.
fn isum_q45_k(x: &[u8], y: &[u8], five: bool) -> KSums {
    let ys = q8k_qs(y);
    let (sc, mn) = unpack_k4_scales(&x[4..16]);
    let qs = if five { &x[48..176] } else { &x[16..144] };
    let (mut isum, mut msum) = (0, 0);
    for j in 0..8 {
        let (c, hi) = (j / 2, j % 2 == 1);
        let q = &qs[32 * c..32 * c + 32];
        let s: i32 = q
            .iter()
            .enumerate()
            .zip(i8s(&ys[32 * j..32 * j + 32]))
            .map(|((l, &q), y)| {
                let mut v = if hi { q >> 4 } else { q & 0xf };
                if five {
                    v |= ((x[16 + l] >> j) & 1) << 4;
                }
                i32::from(v) * y
            })
            .sum();
        isum += i32::from(sc[j]) * s;
        msum += i32::from(mn[j]) * (q8k_bsum(y, 2 * j) + q8k_bsum(y, 2 * j + 1));
    }
    (isum, msum)
}

/// Q4_K: see [`KSums`].
pub fn isum_q4_k(x: &[u8], y: &[u8]) -> KSums {
    isum_q45_k(x, y, false)
}

/// Q5_K: see [`KSums`].
pub fn isum_q5_k(x: &[u8], y: &[u8]) -> KSums {
    isum_q45_k(x, y, true)
}

/// Q6_K (210 bytes): levels 0..63 minus 32, signed 8-bit scales for 16 sub-blocks of 16.
pub fn isum_q6_k(x: &[u8], y: &[u8]) -> KSums {
    let ys = q8k_qs(y);
    let mut isum = 0;
    for n in 0..2 {
        let ql = &x[64 * n..64 * n + 64];
        let qh = &x[128 + 32 * n..128 + 32 * n + 32];
        let sc = &x[192 + 8 * n..192 + 8 * n + 8];
        for i in 0..32 {
            let q = [
                (ql[i] & 0xf) | ((qh[i] & 3) << 4),
                (ql[i + 32] & 0xf) | (((qh[i] >> 2) & 3) << 4),
                (ql[i] >> 4) | (((qh[i] >> 4) & 3) << 4),
                (ql[i + 32] >> 4) | (((qh[i] >> 6) & 3) << 4),
            ];
            for (k, &q) in q.iter().enumerate() {
                let s = i32::from(sc[i / 16 + 2 * k] as i8);
                let yv = i32::from(ys[128 * n + 32 * k + i] as i8);
                isum += s * (i32::from(q) - 32) * yv;
            }
        }
    }
    (isum, 0)
}

/// Sum `f(x_block, y_block)` over a row of 32-element legacy blocks.
#[inline]
fn legacy(
    n: usize,
    w: &[u8],
    a: &[u8],
    wt: GgmlType,
    at: GgmlType,
    f: impl Fn(&[u8], &[u8]) -> f32,
) -> f32 {
    check(n, w, a, wt, at);
    let blocks = w
        .chunks_exact(wt.type_size())
        .zip(a.chunks_exact(at.type_size()));
    blocks.fold(0f32, |s, (x, y)| s + f(x, y))
}

pub fn q4_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    legacy(n, w, a, Q4_0, Q8_0, |x, y| {
        (f16_at(x, 0) * f16_at(y, 0)) * isum_q4_0(x, y) as f32
    })
}

pub fn q5_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    legacy(n, w, a, Q5_0, Q8_0, |x, y| {
        (f16_at(x, 0) * f16_at(y, 0)) * isum_q5_0(x, y) as f32
    })
}

pub fn q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    legacy(n, w, a, Q8_0, Q8_0, |x, y| {
        (f16_at(x, 0) * f16_at(y, 0)) * isum_q8_0(x, y) as f32
    })
}

/// `d·dy·Σq·y + m·s`, `s` being the activation block's stored `dy·Σy`.
pub fn q4_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    legacy(n, w, a, Q4_1, Q8_1, |x, y| {
        (f16_at(x, 0) * f16_at(y, 0)) * isum_q4_1(x, y) as f32 + f16_at(x, 2) * f16_at(y, 2)
    })
}

pub fn q5_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    legacy(n, w, a, Q5_1, Q8_1, |x, y| {
        (f16_at(x, 0) * f16_at(y, 0)) * isum_q5_1(x, y) as f32 + f16_at(x, 2) * f16_at(y, 2)
    })
}

/// Sum over super-blocks of `d·dy·isum − dmin·dy·msum`; `d` is the fp16 at `d_at`, `dmin` at
/// `d_at + 2` when the type has mins.
#[inline]
fn kquant(
    n: usize,
    w: &[u8],
    a: &[u8],
    wt: GgmlType,
    d_at: usize,
    has_min: bool,
    f: fn(&[u8], &[u8]) -> KSums,
) -> f32 {
    check(n, w, a, wt, Q8_K);
    let blocks = w.chunks_exact(wt.type_size()).zip(a.chunks_exact(292));
    blocks.fold(0f32, |s, (x, y)| {
        let dy = f32_at(y, 0);
        let (isum, msum) = f(x, y);
        let mut v = (f16_at(x, d_at) * dy) * isum as f32;
        if has_min {
            v -= (f16_at(x, d_at + 2) * dy) * msum as f32;
        }
        s + v
    })
}

pub fn q2_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    kquant(n, w, a, Q2_K, 80, true, isum_q2_k)
}

pub fn q3_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    kquant(n, w, a, Q3_K, 108, false, isum_q3_k)
}

pub fn q4_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    kquant(n, w, a, Q4_K, 0, true, isum_q4_k)
}

pub fn q5_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    kquant(n, w, a, Q5_K, 0, true, isum_q5_k)
}

pub fn q6_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    kquant(n, w, a, Q6_K, 208, false, isum_q6_k)
}

/// Float rows: each product in f32, accumulated in f64 (ggml's `ggml_float`).
#[inline]
fn float_dot(w: &[u8], a: &[u8], width: usize, get: impl Fn(&[u8]) -> f32) -> f32 {
    let s = w
        .chunks_exact(width)
        .zip(a.chunks_exact(width))
        .fold(0f64, |s, (x, y)| s + f64::from(get(x) * get(y)));
    s as f32
}

pub fn f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(n, w, a, F32, F32);
    float_dot(w, a, 4, |b| f32_at(b, 0))
}

pub fn f16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(n, w, a, F16, F16);
    float_dot(w, a, 2, |b| f16_at(b, 0))
}

pub fn bf16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(n, w, a, BF16, BF16);
    float_dot(w, a, 2, |b| {
        f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)
    })
}

pub(super) fn table() -> DotTable {
    let mut kernels = [None; 15];
    let entries: [(GgmlType, super::DotFn); 13] = [
        (F32, f32),
        (F16, f16),
        (BF16, bf16),
        (Q4_0, q4_0),
        (Q4_1, q4_1),
        (Q5_0, q5_0),
        (Q5_1, q5_1),
        (Q8_0, q8_0),
        (Q2_K, q2_k),
        (Q3_K, q3_k),
        (Q4_K, q4_k),
        (Q5_K, q5_k),
        (Q6_K, q6_k),
    ];
    for (ty, dot) in entries {
        kernels[ty as usize] = Some(Kernel::new(super::act_type(ty).unwrap(), dot));
    }
    DotTable {
        isa: "scalar",
        kernels,
    }
}
