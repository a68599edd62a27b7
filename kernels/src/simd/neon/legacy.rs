//! The legacy types' integer block sums: 32 elements per block, one 16-byte vector of nibbles
//! (element j in the low nibble of byte j, element j + 16 in the high one) or two of Q8_0
//! levels, against the activation block's two vectors of 16 levels.

use super::drive::{Factors, Quant, Sums};
use super::{dot1, dot2, ld, lds};
use crate::blocks::{q4_0, q4_1, q5_0, q5_1, q8_0, q8_1};
use llq_types::GgmlType;
use std::arch::aarch64::*;

/// The two 16-level halves of a Q8_0 or Q8_1 block's levels.
#[inline]
#[target_feature(enable = "neon")]
fn halves(qs: &[u8]) -> (int8x16_t, int8x16_t) {
    (lds(qs), lds(&qs[16..]))
}

/// The low nibbles (elements 0..16) and high nibbles (16..32) of 16 bytes.
#[inline]
#[target_feature(enable = "neon")]
fn nibbles(qs: &[u8]) -> (uint8x16_t, uint8x16_t) {
    let q = ld(qs);
    (vandq_u8(q, vdupq_n_u8(0x0f)), vshrq_n_u8::<4>(q))
}

/// The fifth bits of a Q5 block (bit j of the little-endian u32 at the start of `qh`, for
/// element j) as byte masks: 0xFF where set, for elements 0..16 and 16..32.
#[inline]
#[target_feature(enable = "neon")]
fn fifth_bits(qh: &[u8]) -> (uint8x16_t, uint8x16_t) {
    const PICK: [u8; 32] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    ];
    const BIT: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    let bits = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    // Byte j of each half gets the source byte holding bit j, then that bit is tested.
    let v = vreinterpretq_u8_u32(vdupq_n_u32(bits));
    let bit = ld(&BIT);
    let lo = vtstq_u8(vqtbl1q_u8(v, ld(&PICK)), bit);
    let hi = vtstq_u8(vqtbl1q_u8(v, ld(&PICK[16..])), bit);
    (lo, hi)
}

#[inline]
#[target_feature(enable = "neon")]
fn s8(v: uint8x16_t) -> int8x16_t {
    vreinterpretq_s8_u8(v)
}

/// Sums with no second part (the legacy types have none).
#[inline]
#[target_feature(enable = "neon")]
fn one(i: int32x4_t) -> Sums {
    Sums {
        i,
        m: vdupq_n_s32(0),
    }
}

pub(super) struct Q4_0;
impl Quant for Q4_0 {
    const WT: GgmlType = GgmlType::Q4_0;
    const FACTORS: Factors = Factors::Legacy {
        d: q4_0::D,
        dy: q8_0::D,
        affine: None,
    };

    /// Σ (q − 8)·y: levels −8..7.
    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        let (lo, hi) = nibbles(&x[q4_0::QS..]);
        let eight = vdupq_n_s8(8);
        let (lo, hi) = (vsubq_s8(s8(lo), eight), vsubq_s8(s8(hi), eight));
        let (y0, y1) = halves(q8_0::qs(y));
        one(dot2::<SDOT>(vdupq_n_s32(0), (lo, y0), (hi, y1)))
    }
}

pub(super) struct Q4_1;
impl Quant for Q4_1 {
    const WT: GgmlType = GgmlType::Q4_1;
    const FACTORS: Factors = Factors::Legacy {
        d: q4_1::D,
        dy: q8_1::D,
        affine: Some((q4_1::M, q8_1::S)),
    };

    /// Σ q·y: levels 0..15.
    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        let (lo, hi) = nibbles(&x[q4_1::QS..]);
        let (y0, y1) = halves(q8_1::qs(y));
        one(dot2::<SDOT>(vdupq_n_s32(0), (s8(lo), y0), (s8(hi), y1)))
    }
}

pub(super) struct Q5_0;
impl Quant for Q5_0 {
    const WT: GgmlType = GgmlType::Q5_0;
    const FACTORS: Factors = Factors::Legacy {
        d: q5_0::D,
        dy: q8_0::D,
        affine: None,
    };

    /// Σ (q − 16)·y: levels −16..15, the nibble with its top four bits set (−16 as a byte)
    /// where the fifth bit is clear.
    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        let (lo, hi) = nibbles(&x[q5_0::QS..]);
        let (b0, b1) = fifth_bits(&x[q5_0::QH..]);
        let top = vdupq_n_u8(0xf0);
        let lo = vorrq_u8(lo, vbicq_u8(top, b0));
        let hi = vorrq_u8(hi, vbicq_u8(top, b1));
        let (y0, y1) = halves(q8_0::qs(y));
        one(dot2::<SDOT>(vdupq_n_s32(0), (s8(lo), y0), (s8(hi), y1)))
    }
}

pub(super) struct Q5_1;
impl Quant for Q5_1 {
    const WT: GgmlType = GgmlType::Q5_1;
    const FACTORS: Factors = Factors::Legacy {
        d: q5_1::D,
        dy: q8_1::D,
        affine: Some((q5_1::M, q8_1::S)),
    };

    /// Σ q·y: levels 0..31.
    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        let (lo, hi) = nibbles(&x[q5_1::QS..]);
        let (b0, b1) = fifth_bits(&x[q5_1::QH..]);
        let bit4 = vdupq_n_u8(0x10);
        let lo = vorrq_u8(lo, vandq_u8(b0, bit4));
        let hi = vorrq_u8(hi, vandq_u8(b1, bit4));
        let (y0, y1) = halves(q8_1::qs(y));
        one(dot2::<SDOT>(vdupq_n_s32(0), (s8(lo), y0), (s8(hi), y1)))
    }
}

pub(super) struct Q8_0;
impl Quant for Q8_0 {
    const WT: GgmlType = GgmlType::Q8_0;
    const FACTORS: Factors = Factors::Legacy {
        d: q8_0::D,
        dy: q8_0::D,
        affine: None,
    };

    /// Σ x·y over all byte values (−128 included).
    #[inline(always)]
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums {
        let (x0, x1) = halves(q8_0::qs(x));
        let (y0, y1) = halves(q8_0::qs(y));
        one(dot1::<SDOT>(dot1::<SDOT>(vdupq_n_s32(0), x0, y0), x1, y1))
    }
}
