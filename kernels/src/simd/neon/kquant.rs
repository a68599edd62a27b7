//! The K-quants' integer block sums against Q8_K: each sub-block's level products (16 or 32
//! elements) scaled by its integer scale in the i32 lanes; the mins (Q2_K, Q4_K, Q5_K) through
//! the activations' stored 16-element sums, as the scalar reference applies them.

use super::drive::{Factors, Quant, Sums};
use super::{dot1_scaled, dot2_scaled, ld, ld_i16, lds};
use crate::blocks::{q2_k, q3_k, q4_k, q5_k, q6_k, q8_k, sub32};
use llq_types::GgmlType;
use std::arch::aarch64::*;

#[inline]
#[target_feature(enable = "neon")]
fn s8(v: uint8x16_t) -> int8x16_t {
    vreinterpretq_s8_u8(v)
}

/// The 256 levels of a Q8_K block.
#[inline]
fn levels(y: &[u8]) -> &[u8] {
    &y[q8_k::QS..q8_k::QS + 256]
}

/// The Q8_K block's 16 stored sums of 16 levels, as two vectors of eight i16.
#[inline]
#[target_feature(enable = "neon")]
fn bsums(y: &[u8]) -> (int16x8_t, int16x8_t) {
    let b = &y[q8_k::BSUMS..q8_k::BSUMS + 32];
    (ld_i16(b), ld_i16(&b[16..]))
}

#[allow(non_camel_case_types)]
pub(super) struct Q2_K;
impl Quant for Q2_K {
    const WT: GgmlType = GgmlType::Q2_K;
    const FACTORS: Factors = Factors::KQuant {
        d: q2_k::D,
        dmin: Some(q2_k::DMIN),
    };

    /// Levels 0..3 in 16 sub-blocks of 16, a 4-bit scale (low nibble) and min (high) each.
    /// Sub-block `j = 8n + 2s + h` is bits `2s` of the 16 bytes at `32n + 16h`.
    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        let sc = &x[q2_k::SC..q2_k::SC + 16];
        let qs = &x[q2_k::QS..q2_k::D];
        let yq = levels(y);
        let three = vdupq_n_u8(3);
        let mut acc = vdupq_n_s32(0);
        for n in 0..2 {
            let mut q = [ld(&qs[32 * n..]), ld(&qs[32 * n + 16..])];
            for s in 0..4 {
                for (h, q) in q.iter_mut().enumerate() {
                    let j = 8 * n + 2 * s + h;
                    let l = s8(vandq_u8(*q, three));
                    let scale = i16::from(sc[j] & 0xf);
                    acc = dot1_scaled::<SDOT>(acc, l, lds(&yq[16 * j..]), scale);
                    *q = vshrq_n_u8::<2>(*q);
                }
            }
        }
        let mins = vshrq_n_u8::<4>(ld(sc));
        let m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mins)));
        let m1 = vreinterpretq_s16_u16(vmovl_high_u8(mins));
        let (b0, b1) = bsums(y);
        let m = vmull_s16(vget_low_s16(b0), vget_low_s16(m0));
        let m = vmlal_high_s16(m, b0, m0);
        let m = vmlal_s16(m, vget_low_s16(b1), vget_low_s16(m1));
        let m = vmlal_high_s16(m, b1, m1);
        Sums { i: acc, m }
    }
}

#[allow(non_camel_case_types)]
pub(super) struct Q3_K;
impl Quant for Q3_K {
    const WT: GgmlType = GgmlType::Q3_K;
    const FACTORS: Factors = Factors::KQuant {
        d: q3_k::D,
        dmin: None,
    };

    /// Levels −4..3: the 2-bit low part (packed as Q2_K's), minus 4 where the high bit (bit
    /// `4n + s` of the 16 `hmask` bytes at `16h`, for sub-block `j = 8n + 2s + h`) is clear;
    /// 16 signed 6-bit scales.
    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        let scales = q3_k::unpack_scales(&x[q3_k::SC..q3_k::D]);
        let qs = &x[q3_k::QS..q3_k::SC];
        let yq = levels(y);
        let (three, four) = (vdupq_n_u8(3), vdupq_n_u8(4));
        let mut hm = [ld(&x[q3_k::HMASK..]), ld(&x[q3_k::HMASK + 16..])];
        let mut acc = vdupq_n_s32(0);
        for n in 0..2 {
            let mut q = [ld(&qs[32 * n..]), ld(&qs[32 * n + 16..])];
            for s in 0..4 {
                for (h, (q, hm)) in q.iter_mut().zip(hm.iter_mut()).enumerate() {
                    let j = 8 * n + 2 * s + h;
                    let high = vandq_u8(vshlq_n_u8::<2>(*hm), four);
                    let l = vsubq_s8(s8(vorrq_u8(vandq_u8(*q, three), high)), s8(four));
                    let scale = i16::from(scales[j]);
                    acc = dot1_scaled::<SDOT>(acc, l, lds(&yq[16 * j..]), scale);
                    *q = vshrq_n_u8::<2>(*q);
                    *hm = vshrq_n_u8::<1>(*hm);
                }
            }
        }
        Sums {
            i: acc,
            m: vdupq_n_s32(0),
        }
    }
}

/// Q4_K and Q5_K: eight sub-blocks of 32, each 32 bytes of nibbles holding sub-block `2c` in
/// the low nibbles and `2c + 1` in the high ones, and (Q5_K) their fifth bits in bits `2c` and
/// `2c + 1` of the 32 `qh` bytes; 6-bit scales and mins.
#[inline(always)]
unsafe fn sums_q45<const SDOT: bool, const FIVE: bool>(x: &[u8], y: &[u8]) -> Sums {
    let (sc, mn) = sub32::unpack_scale_min(&x[sub32::SC..sub32::HEAD]);
    let qs = if FIVE {
        &x[q5_k::QS..q5_k::QS + 128]
    } else {
        &x[q4_k::QS..q4_k::QS + 128]
    };
    let yq = levels(y);
    let m4 = vdupq_n_u8(0x0f);
    let bit4 = vdupq_n_u8(0x10);
    let mut qh = if FIVE {
        [ld(&x[q5_k::QH..]), ld(&x[q5_k::QH + 16..])]
    } else {
        [vdupq_n_u8(0); 2]
    };
    let mut acc = vdupq_n_s32(0);
    for c in 0..4 {
        let q = [ld(&qs[32 * c..]), ld(&qs[32 * c + 16..])];
        let mut lo = [vandq_u8(q[0], m4), vandq_u8(q[1], m4)];
        let mut hi = [vshrq_n_u8::<4>(q[0]), vshrq_n_u8::<4>(q[1])];
        if FIVE {
            for k in 0..2 {
                lo[k] = vorrq_u8(lo[k], vandq_u8(vshlq_n_u8::<4>(qh[k]), bit4));
                hi[k] = vorrq_u8(hi[k], vandq_u8(vshlq_n_u8::<3>(qh[k]), bit4));
                qh[k] = vshrq_n_u8::<2>(qh[k]);
            }
        }
        let y = &yq[64 * c..64 * c + 64];
        let (y0, y1, y2, y3) = (lds(y), lds(&y[16..]), lds(&y[32..]), lds(&y[48..]));
        let (sc0, sc1) = (i16::from(sc[2 * c]), i16::from(sc[2 * c + 1]));
        acc = dot2_scaled::<SDOT>(acc, (s8(lo[0]), y0), (s8(lo[1]), y1), sc0);
        acc = dot2_scaled::<SDOT>(acc, (s8(hi[0]), y2), (s8(hi[1]), y3), sc1);
    }
    // Each min covers 32 elements, two of the stored sums: add adjacent ones, then dot.
    let (b0, b1) = bsums(y);
    let pairs = vpaddq_s16(b0, b1);
    let mins = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(u64::from_le_bytes(mn))));
    let m = vmull_s16(vget_low_s16(pairs), vget_low_s16(mins));
    let m = vmlal_high_s16(m, pairs, mins);
    Sums { i: acc, m }
}

#[allow(non_camel_case_types)]
pub(super) struct Q4_K;
impl Quant for Q4_K {
    const WT: GgmlType = GgmlType::Q4_K;
    const FACTORS: Factors = Factors::KQuant {
        d: sub32::D,
        dmin: Some(sub32::DMIN),
    };

    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        sums_q45::<SDOT, false>(x, y)
    }
}

#[allow(non_camel_case_types)]
pub(super) struct Q5_K;
impl Quant for Q5_K {
    const WT: GgmlType = GgmlType::Q5_K;
    const FACTORS: Factors = Factors::KQuant {
        d: sub32::D,
        dmin: Some(sub32::DMIN),
    };

    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        sums_q45::<SDOT, true>(x, y)
    }
}

#[allow(non_camel_case_types)]
pub(super) struct Q6_K;
impl Quant for Q6_K {
    const WT: GgmlType = GgmlType::Q6_K;
    const FACTORS: Factors = Factors::KQuant {
        d: q6_k::D,
        dmin: None,
    };

    /// Levels 0..63 stored + 32, 16 signed 8-bit scales of 16 elements. In each half `n` of
    /// 128 elements, element `32k + i` (i < 32) takes the low (k < 2) or high nibble of
    /// `ql[64n + 32(k % 2) + i]` and bits `2k..2k + 2` of `qh[32n + i]`.
    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        let ql = &x[q6_k::QL..q6_k::QH];
        let qh = &x[q6_k::QH..q6_k::SC];
        let sc = &x[q6_k::SC..q6_k::D];
        let yq = levels(y);
        let m4 = vdupq_n_u8(0x0f);
        let m2 = vdupq_n_u8(0x30);
        let zero = vdupq_n_s8(32);
        let mut acc = vdupq_n_s32(0);
        for n in 0..2 {
            for half in 0..2 {
                // Elements 128n + 32k + 16·half + (0..16), for k = 0..4.
                let at = 16 * half;
                let l0 = ld(&ql[64 * n + at..]);
                let l1 = ld(&ql[64 * n + 32 + at..]);
                let h = ld(&qh[32 * n + at..]);
                let q = [
                    vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8::<4>(h), m2)),
                    vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8::<2>(h), m2)),
                    vorrq_u8(vshrq_n_u8::<4>(l0), vandq_u8(h, m2)),
                    vorrq_u8(vshrq_n_u8::<4>(l1), vandq_u8(vshrq_n_u8::<2>(h), m2)),
                ];
                for (k, q) in q.into_iter().enumerate() {
                    let e = 128 * n + 32 * k + at;
                    let l = vsubq_s8(s8(q), zero);
                    let scale = i16::from(sc[e / 16] as i8);
                    acc = dot1_scaled::<SDOT>(acc, l, lds(&yq[e..]), scale);
                }
            }
        }
        Sums {
            i: acc,
            m: vdupq_n_s32(0),
        }
    }
}
