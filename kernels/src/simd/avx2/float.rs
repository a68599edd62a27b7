//! The float types: 32 elements per step in four accumulators (FMA), then a scalar tail.

use super::{hsum_ps, ld128, ldps};
use crate::blocks::float::bf16_at;
use crate::blocks::{f16_at, f32_at};
use crate::dot::DotFn;
use llq_types::GgmlType::{self, *};
use std::arch::x86_64::*;

/// The kernels of this module, by weight type.
pub(super) const KERNELS: &[(GgmlType, DotFn)] = &[(F32, f32), (F16, f16), (BF16, bf16)];

/// `load(bytes)` converts the 8 elements at the start of `bytes`; `width` bytes per element.
macro_rules! float_row {
    ($w:expr, $a:expr, $width:expr, $load:ident, $one:expr) => {{
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        let step = 8 * $width;
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut wc = w.chunks_exact(4 * step);
        let mut ac = a.chunks_exact(4 * step);
        for (x, y) in (&mut wc).zip(&mut ac) {
            for (k, acc) in acc.iter_mut().enumerate() {
                let (x, y) = (&x[k * step..], &y[k * step..]);
                *acc = _mm256_fmadd_ps($load(x), $load(y), *acc);
            }
        }
        let mut wc8 = wc.remainder().chunks_exact(step);
        let mut ac8 = ac.remainder().chunks_exact(step);
        for (x, y) in (&mut wc8).zip(&mut ac8) {
            acc[0] = _mm256_fmadd_ps($load(x), $load(y), acc[0]);
        }
        let tail = wc8
            .remainder()
            .chunks_exact($width)
            .zip(ac8.remainder().chunks_exact($width))
            .fold(0f32, |s, (x, y)| s + $one(x) * $one(y));
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        hsum_ps(v) + tail
    }};
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld_f16(s: &[u8]) -> __m256 {
    _mm256_cvtph_ps(ld128(s))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld_bf16(s: &[u8]) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(ld128(s))))
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

#[target_feature(enable = "avx2,fma,f16c")]
fn f32_row(w: &[u8], a: &[u8]) -> f32 {
    float_row!(w, a, 4, ldps, one_f32)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_row(w: &[u8], a: &[u8]) -> f32 {
    float_row!(w, a, 2, ld_f16, one_f16)
}
#[target_feature(enable = "avx2,fma,f16c")]
fn bf16_row(w: &[u8], a: &[u8]) -> f32 {
    float_row!(w, a, 2, ld_bf16, one_bf16)
}

entry!(f32, f32_row, F32);
entry!(f16, f16_row, F16);
entry!(bf16, bf16_row, BF16);
