//! The float types: 32 elements per step into eight accumulators of four f32 lanes (FMA), then
//! four per step, then a scalar tail. The reference sums f32 products in f64; these sum in f32
//! lanes and agree with it to rounding (as the x86 kernels do), which the tests bound.

use super::{f16x4, f16x4_high, ld, ld_f32};
use crate::blocks::float::bf16_at;
use crate::blocks::{f16_at, f32_at};
use crate::dot::{self, DotFn};
use llq_types::GgmlType::{self, *};
use std::arch::aarch64::*;

/// The kernels of this module, by weight type.
pub(super) const KERNELS: &[(GgmlType, DotFn)] = &[(F32, f32), (F16, f16), (BF16, bf16)];

/// `$load8(bytes)` converts the 8 elements at the start of `bytes` (`$width` bytes each) into
/// two vectors, `$load(bytes)` the 4 at its start, `$one(bytes)` the first.
macro_rules! float_row {
    ($w:expr, $a:expr, $width:expr, $load8:ident, $load:ident, $one:expr) => {{
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        let step = 8 * $width;
        let mut acc = [vdupq_n_f32(0.0); 8];
        let mut wc = w.chunks_exact(4 * step);
        let mut ac = a.chunks_exact(4 * step);
        for (x, y) in (&mut wc).zip(&mut ac) {
            for k in 0..4 {
                let (x0, x1) = $load8(&x[k * step..]);
                let (y0, y1) = $load8(&y[k * step..]);
                acc[2 * k] = vfmaq_f32(acc[2 * k], x0, y0);
                acc[2 * k + 1] = vfmaq_f32(acc[2 * k + 1], x1, y1);
            }
        }
        let quad = 4 * $width;
        let mut wc4 = wc.remainder().chunks_exact(quad);
        let mut ac4 = ac.remainder().chunks_exact(quad);
        for (x, y) in (&mut wc4).zip(&mut ac4) {
            acc[0] = vfmaq_f32(acc[0], $load(x), $load(y));
        }
        let tail = wc4
            .remainder()
            .chunks_exact($width)
            .zip(ac4.remainder().chunks_exact($width))
            .fold(0f32, |s, (x, y)| s + $one(x) * $one(y));
        let s01 = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
        let s23 = vaddq_f32(vaddq_f32(acc[4], acc[5]), vaddq_f32(acc[6], acc[7]));
        vaddvq_f32(vaddq_f32(s01, s23)) + tail
    }};
}

#[inline]
#[target_feature(enable = "neon")]
fn ld8_f32(s: &[u8]) -> (float32x4_t, float32x4_t) {
    (ld_f32(s), ld_f32(&s[16..]))
}

#[inline]
#[target_feature(enable = "neon")]
fn ld8_f16(s: &[u8]) -> (float32x4_t, float32x4_t) {
    let h = vreinterpretq_u16_u8(ld(s));
    (f16x4(vget_low_u16(h)), f16x4_high(h))
}

/// The 4 fp16 at the start of `s`.
#[inline]
#[target_feature(enable = "neon")]
fn ld4_f16(s: &[u8]) -> float32x4_t {
    let b = &s[..8];
    let h = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    f16x4(vcreate_u16(h))
}

/// bf16 to f32: the 16 bits become the top half of the f32.
#[inline]
#[target_feature(enable = "neon")]
fn ld8_bf16(s: &[u8]) -> (float32x4_t, float32x4_t) {
    let h = vreinterpretq_u16_u8(ld(s));
    (
        vreinterpretq_f32_u32(vshll_n_u16::<16>(vget_low_u16(h))),
        vreinterpretq_f32_u32(vshll_high_n_u16::<16>(h)),
    )
}

#[inline]
#[target_feature(enable = "neon")]
fn ld4_bf16(s: &[u8]) -> float32x4_t {
    let b = &s[..8];
    let h = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    vreinterpretq_f32_u32(vshll_n_u16::<16>(vcreate_u16(h)))
}

fn one_f32(b: &[u8]) -> f32 {
    f32_at(b, 0)
}
fn one_f16(b: &[u8]) -> f32 {
    f16_at(b, 0)
}
fn one_bf16(b: &[u8]) -> f32 {
    bf16_at(b)
}

#[target_feature(enable = "neon")]
fn f32_row(w: &[u8], a: &[u8]) -> f32 {
    float_row!(w, a, 4, ld8_f32, ld_f32, one_f32)
}
#[target_feature(enable = "neon")]
fn f16_row(w: &[u8], a: &[u8]) -> f32 {
    float_row!(w, a, 2, ld8_f16, ld4_f16, one_f16)
}
#[target_feature(enable = "neon")]
fn bf16_row(w: &[u8], a: &[u8]) -> f32 {
    float_row!(w, a, 2, ld8_bf16, ld4_bf16, one_bf16)
}

/// A table entry `$name(n, w, a)` for weights of `$wt`: check the lengths, then enter `$row`.
macro_rules! entry {
    ($name:ident, $row:ident, $wt:expr) => {
        fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            dot::check(n, w, a, $wt);
            // SAFETY: NEON is part of every aarch64 CPU (and the table checked it).
            unsafe { $row(w, a) }
        }
    };
}

entry!(f32, f32_row, F32);
entry!(f16, f16_row, F16);
entry!(bf16, bf16_row, BF16);
