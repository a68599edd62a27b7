//! AArch64 Advanced SIMD (NEON) dot kernels, in two tables:
//! - `neon`: every aarch64 CPU (NEON is part of the base architecture). Byte products with
//!   `smull`/`smlal` into 16-bit lanes, widened with `sadalp`/`smlal` before they could overflow.
//! - `neondot`: CPUs with the dot-product extension (FEAT_DotProd: Cortex-A55/A75 and later,
//!   Neoverse, Apple M1 and later), detected at run time with
//!   `is_aarch64_feature_detected!("dotprod")`: `sdot` adds four byte products into each i32
//!   lane in one instruction. `vdotq_s32` is not stable Rust, so `sdot` is inline asm inside a
//!   `#[target_feature(enable = "neon,dotprod")]` function ([`sdot`]).
//!
//! Both tables have their own kernels for every quantized type (`legacy`: Q4_0, Q4_1, Q5_0,
//! Q5_1, Q8_0; `kquant`: Q2_K … Q6_K, driven by `drive`) and share the float ones (`float`: F32,
//! F16, BF16, in the `neon` table; `neondot` starts from a copy of it).
//!
//! **Quantized kernels are bit-identical to the scalar reference** (the block files), in the dot
//! product, the many-row matvec and the four-token kernel alike: each block's integer sums are
//! exact (any grouping of exact integer additions gives the same i32), and the float part is the
//! reference's own operations in its order — per block `(d·dy)·isum` (then `+ m·s` or
//! `− (dmin·dy)·msum`), added to one f32 sum block after block, as separate multiplies and adds
//! (no FMA). Vector lanes hold four *rows* (matvec), four *tokens* (dot4) or four consecutive
//! blocks of one row whose values are then added in order (dot): never partial sums of one row,
//! so nothing is reassociated. fp16 factors are widened with `fcvtl`, which is exact and part
//! of base NEON (FEAT_FP16 is only needed for arithmetic *in* fp16, which nothing here does), so
//! the `fp16` feature is not needed or checked. The float types accumulate in f32 lanes with
//! FMA and agree with the f64 reference to rounding, like the x86 ones.
//!
//! Safety: every `unsafe fn` here has the same contract — with `SDOT = true` (the `neondot`
//! instantiations) the CPU must have the dotprod extension; NEON itself is always there on
//! aarch64 (it is in the target's baseline features). The table entries (plain functions, as
//! the table stores them) are the only callers from outside: the `neondot` table, which alone
//! holds the `SDOT = true` entries, is built only after the dotprod check.

mod drive;
mod float;
mod kquant;
mod legacy;

use crate::dot::{self, Dot4Fn, DotFn, DotTable, Isa, MatvecFn, Packer};
use drive::Quant;
use llq_types::GgmlType;
use std::arch::aarch64::*;
use std::arch::asm;

pub(crate) const NEON: Isa = Isa {
    name: "neon",
    build: neon_table,
};

pub(crate) const NEONDOT: Isa = Isa {
    name: "neondot",
    build: neondot_table,
};

/// The scalar table with every NEON kernel over it. NEON is in the base aarch64 architecture;
/// the check is there for form's sake.
fn neon_table() -> Option<DotTable> {
    if !std::arch::is_aarch64_feature_detected!("neon") {
        return None;
    }
    let mut t = dot::scalar_table().clone();
    t.isa = NEON.name;
    for &(ty, dot) in float::KERNELS {
        t.set(ty, dot);
    }
    install::<false>(&mut t);
    Some(t)
}

/// The `neon` table with the quantized kernels replaced by their `sdot` versions, or `None`
/// when the CPU lacks the dot-product extension.
fn neondot_table() -> Option<DotTable> {
    if !std::arch::is_aarch64_feature_detected!("dotprod") {
        return None;
    }
    let mut t = neon_table()?;
    t.isa = NEONDOT.name;
    install::<true>(&mut t);
    Some(t)
}

/// Install the quantized kernels (dot, matvec, four tokens) of one flavour.
fn install<const SDOT: bool>(t: &mut DotTable) {
    for (ty, dot, matvec, dot4, packer) in quantized::<SDOT>() {
        t.set(ty, dot);
        t.set_packed(ty, matvec, dot4, packer);
    }
}

/// The quantized kernels of one flavour, by weight type.
fn quantized<const SDOT: bool>() -> [(GgmlType, DotFn, MatvecFn, Dot4Fn, Packer); 10] {
    [
        entries::<legacy::Q4_0, SDOT>(),
        entries::<legacy::Q4_1, SDOT>(),
        entries::<legacy::Q5_0, SDOT>(),
        entries::<legacy::Q5_1, SDOT>(),
        entries::<legacy::Q8_0, SDOT>(),
        entries::<kquant::Q2_K, SDOT>(),
        entries::<kquant::Q3_K, SDOT>(),
        entries::<kquant::Q4_K, SDOT>(),
        entries::<kquant::Q5_K, SDOT>(),
        entries::<kquant::Q6_K, SDOT>(),
    ]
}

fn entries<Q: Quant, const SDOT: bool>() -> (GgmlType, DotFn, MatvecFn, Dot4Fn, Packer) {
    (
        Q::WT,
        dot_entry::<Q, SDOT>,
        matvec_entry::<Q, SDOT>,
        dot4_entry::<Q, SDOT>,
        Packer {
            row_bytes: act_row_bytes::<Q>,
            pack: copy_row::<Q>,
        },
    )
}

// The table entries. SAFETY of each `unsafe` call below: see the module doc — the feature-enabled
// function is entered with `SDOT = true` only from the `neondot` table, built after dotprod was
// detected; NEON is always present on aarch64.

fn dot_entry<Q: Quant, const SDOT: bool>(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot::check(n, w, a, Q::WT);
    // SAFETY: see above.
    unsafe {
        if SDOT {
            dotprod::row::<Q>(w, a)
        } else {
            plain::row::<Q>(w, a)
        }
    }
}

fn matvec_entry<Q: Quant, const SDOT: bool>(n: usize, w: &[u8], a: &[u8], out: &mut [f32]) {
    let row = Q::WT.row_bytes(n).expect("n is whole blocks");
    assert_eq!(
        w.len(),
        out.len() * row,
        "{} {} weight rows of {n}",
        out.len(),
        Q::WT
    );
    assert_eq!(
        Some(a.len()),
        Q::AT.row_bytes(n),
        "{} activation row of {n}",
        Q::AT
    );
    // SAFETY: see above.
    unsafe {
        if SDOT {
            dotprod::matvec::<Q>(row, w, a, out)
        } else {
            plain::matvec::<Q>(row, w, a, out)
        }
    }
}

fn dot4_entry<Q: Quant, const SDOT: bool>(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    assert_eq!(
        Q::WT.row_bytes(n),
        Some(w.len()),
        "{} weight row of {n}",
        Q::WT
    );
    for a in a {
        assert_eq!(
            Some(a.len()),
            Q::AT.row_bytes(n),
            "{} activation row of {n}",
            Q::AT
        );
    }
    // SAFETY: see above.
    unsafe {
        if SDOT {
            dotprod::dot4::<Q>(w, a)
        } else {
            plain::dot4::<Q>(w, a)
        }
    }
}

/// The packed layout is the activation rows as quantized: the multi-token kernels need no
/// other (a copy per matmul, against one pass over the weights).
fn act_row_bytes<Q: Quant>(n: usize) -> usize {
    Q::AT.row_bytes(n).expect("n is whole blocks")
}

fn copy_row<Q: Quant>(n: usize, a: &[u8], out: &mut [u8]) {
    assert_eq!(
        Some(a.len()),
        Q::AT.row_bytes(n),
        "{} activation row of {n}",
        Q::AT
    );
    out.copy_from_slice(a);
}

/// The drivers compiled for one set of features: the whole kernel is inlined into these, so
/// `sdot` (which needs dotprod) can be inlined too.
macro_rules! flavour {
    ($name:ident, $features:literal, $sdot:literal) => {
        mod $name {
            use super::drive::{self, Quant};

            /// # Safety
            /// See the module doc of `neon`.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn row<Q: Quant>(w: &[u8], a: &[u8]) -> f32 {
                drive::row::<Q, $sdot>(w, a)
            }

            /// # Safety
            /// See the module doc of `neon`.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn matvec<Q: Quant>(row: usize, w: &[u8], a: &[u8], out: &mut [f32]) {
                drive::matvec::<Q, $sdot>(row, w, a, out)
            }

            /// # Safety
            /// See the module doc of `neon`.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn dot4<Q: Quant>(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                drive::dot4::<Q, $sdot>(w, a)
            }
        }
    };
}

flavour!(plain, "neon", false);
flavour!(dotprod, "neon,dotprod", true);

// ---- loads ------------------------------------------------------------------------------------

/// 16 bytes from the start of `s`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld(s: &[u8]) -> uint8x16_t {
    let s = &s[..16];
    // SAFETY: `s` holds 16 readable bytes; `ld1` has no alignment requirement.
    unsafe { vld1q_u8(s.as_ptr()) }
}

/// 16 bytes from the start of `s`, as signed bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn lds(s: &[u8]) -> int8x16_t {
    vreinterpretq_s8_u8(ld(s))
}

/// 8 little-endian i16 from the start of `s`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld_i16(s: &[u8]) -> int16x8_t {
    vreinterpretq_s16_u8(ld(s))
}

/// 4 little-endian f32 from the start of `s`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld_f32(s: &[u8]) -> float32x4_t {
    vreinterpretq_f32_u8(ld(s))
}

/// The little-endian u16 at `at` in each of four slices, in lanes 0..4.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn gather_u16(b: [&[u8]; 4], at: usize) -> uint16x4_t {
    let g = |k: usize| u16::from_le_bytes([b[k][at], b[k][at + 1]]);
    let v = [g(0), g(1), g(2), g(3)];
    // SAFETY: `v` holds 4 u16.
    unsafe { vld1_u16(v.as_ptr()) }
}

/// The little-endian f32 at `at` in each of four slices, in lanes 0..4.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn gather_f32(b: [&[u8]; 4], at: usize) -> float32x4_t {
    let g = |k: usize| f32::from_le_bytes([b[k][at], b[k][at + 1], b[k][at + 2], b[k][at + 3]]);
    let v = [g(0), g(1), g(2), g(3)];
    // SAFETY: `v` holds 4 f32.
    unsafe { vld1q_f32(v.as_ptr()) }
}

// ---- fp16 ------------------------------------------------------------------------------------

/// Four fp16 (bits) to f32 with `fcvtl`: exact (every fp16 is an f32), base NEON.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn f16x4(h: uint16x4_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: a register-only instruction of base NEON.
    unsafe {
        asm!("fcvtl {o:v}.4s, {i:v}.4h", i = in(vreg) h, o = out(vreg) out,
             options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// The upper four fp16 (bits) of `h` to f32 with `fcvtl2`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn f16x4_high(h: uint16x8_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: a register-only instruction of base NEON.
    unsafe {
        asm!("fcvtl2 {o:v}.4s, {i:v}.8h", i = in(vreg) h, o = out(vreg) out,
             options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// The fp16 at `at` in each of four slices, as f32 lanes.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn h4(b: [&[u8]; 4], at: usize) -> float32x4_t {
    f16x4(gather_u16(b, at))
}

// ---- byte dot products -----------------------------------------------------------------------

/// `acc` + the four byte products of each i32 lane (`sdot`).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction; this function's features (checked by the caller's
    // table) include dotprod.
    unsafe {
        asm!("sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
             acc = inout(vreg) acc, a = in(vreg) a, b = in(vreg) b,
             options(pure, nomem, nostack, preserves_flags));
    }
    acc
}

/// `acc` + lanes summing to Σ a·b over 16 signed bytes, exact for any bytes.
///
/// # Safety
/// With `SDOT`, the CPU has dotprod.
#[inline(always)]
pub(super) unsafe fn dot1<const SDOT: bool>(
    acc: int32x4_t,
    a: int8x16_t,
    b: int8x16_t,
) -> int32x4_t {
    if SDOT {
        sdot(acc, a, b)
    } else {
        // |a·b| ≤ 2^14: one product per i16 lane, then pairs widened into i32.
        let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        vpadalq_s16(vpadalq_s16(acc, lo), vmull_high_s8(a, b))
    }
}

/// Σ a0·b0 + a1·b1 over 2×16 signed bytes as i16 lanes, four products per lane: exact when
/// every |a| ≤ 63 (4·63·128 < 2^15).
#[inline]
#[target_feature(enable = "neon")]
fn mul_small2(a0: int8x16_t, b0: int8x16_t, a1: int8x16_t, b1: int8x16_t) -> int16x8_t {
    let p = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
    let p = vmlal_high_s8(p, a0, b0);
    let p = vmlal_s8(p, vget_low_s8(a1), vget_low_s8(b1));
    vmlal_high_s8(p, a1, b1)
}

/// `acc` + lanes summing to Σ a0·b0 + a1·b1 (2×16 bytes), where every |a| ≤ 63.
///
/// # Safety
/// With `SDOT`, the CPU has dotprod.
#[inline(always)]
pub(super) unsafe fn dot2<const SDOT: bool>(
    acc: int32x4_t,
    (a0, b0): (int8x16_t, int8x16_t),
    (a1, b1): (int8x16_t, int8x16_t),
) -> int32x4_t {
    if SDOT {
        sdot(sdot(acc, a0, b0), a1, b1)
    } else {
        vpadalq_s16(acc, mul_small2(a0, b0, a1, b1))
    }
}

/// `acc` + lanes summing to `sc`·Σ a0·b0 + a1·b1 (2×16 bytes), where every |a| ≤ 63 and
/// |sc| ≤ 255 (so that no i32 lane can overflow).
///
/// # Safety
/// With `SDOT`, the CPU has dotprod.
#[inline(always)]
pub(super) unsafe fn dot2_scaled<const SDOT: bool>(
    acc: int32x4_t,
    (a0, b0): (int8x16_t, int8x16_t),
    (a1, b1): (int8x16_t, int8x16_t),
    sc: i16,
) -> int32x4_t {
    if SDOT {
        let s = sdot(sdot(vdupq_n_s32(0), a0, b0), a1, b1);
        vmlaq_n_s32(acc, s, i32::from(sc))
    } else {
        let p = mul_small2(a0, b0, a1, b1);
        vmlal_high_n_s16(vmlal_n_s16(acc, vget_low_s16(p), sc), p, sc)
    }
}

/// `acc` + lanes summing to `sc`·Σ a·b (16 bytes), where every |a| ≤ 63 and |sc| ≤ 255.
///
/// # Safety
/// With `SDOT`, the CPU has dotprod.
#[inline(always)]
pub(super) unsafe fn dot1_scaled<const SDOT: bool>(
    acc: int32x4_t,
    a: int8x16_t,
    b: int8x16_t,
    sc: i16,
) -> int32x4_t {
    if SDOT {
        vmlaq_n_s32(acc, sdot(vdupq_n_s32(0), a, b), i32::from(sc))
    } else {
        let p = vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b);
        vmlal_high_n_s16(vmlal_n_s16(acc, vget_low_s16(p), sc), p, sc)
    }
}

/// Lane `k` = the sum of the lanes of `v[k]`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn reduce4(v: [int32x4_t; 4]) -> int32x4_t {
    vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::f16_at;

    /// `fcvtl` widens every fp16 exactly as the scalar reference's conversion does.
    #[test]
    fn fcvtl_equals_the_reference_on_every_f16() {
        for bits in (0..=u16::MAX).step_by(4) {
            let v: [u16; 4] = std::array::from_fn(|k| bits + k as u16);
            let bytes: Vec<u8> = v.iter().flat_map(|b| b.to_le_bytes()).collect();
            // SAFETY: NEON is always present on aarch64; `v` holds 4 u16.
            let got: [f32; 4] = unsafe {
                let mut out = [0f32; 4];
                vst1q_f32(out.as_mut_ptr(), f16x4(vld1_u16(v.as_ptr())));
                out
            };
            for (k, g) in got.iter().enumerate() {
                let want = f16_at(&bytes, 2 * k);
                assert!(
                    g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                    "{:#06x}: {g} vs {want}",
                    v[k]
                );
            }
        }
    }

    /// Every byte dot product of both flavours against plain integer sums, on bytes that hit
    /// the extremes (−128 and 127 included where the bound allows).
    #[test]
    fn byte_dots_are_exact() {
        let dotprod = std::arch::is_aarch64_feature_detected!("dotprod");
        let mut seed = 7u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        for round in 0..2000 {
            let full = |f: &mut dyn FnMut() -> u8| -> [i8; 16] {
                std::array::from_fn(|_| match round % 4 {
                    0 => -128,
                    1 => 127,
                    _ => f() as i8,
                })
            };
            let small = |f: &mut dyn FnMut() -> u8| -> [i8; 16] {
                std::array::from_fn(|_| match round % 4 {
                    0 => -63,
                    1 => 63,
                    _ => (f() % 127) as i8 - 63,
                })
            };
            let (a0, a1) = (small(&mut next), small(&mut next));
            let (b0, b1, f) = (full(&mut next), full(&mut next), full(&mut next));
            let sc = [-128i16, -1, 0, 1, 63, 127][round % 6];
            let s = |a: &[i8; 16], b: &[i8; 16]| -> i32 {
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| i32::from(x) * i32::from(y))
                    .sum()
            };
            // `acc` below has 5 in each of its four lanes.
            let want_full = 20 + s(&f, &b0);
            let want2 = 20 + s(&a0, &b0) + s(&a1, &b1);
            let want2s = 20 + i32::from(sc) * (s(&a0, &b0) + s(&a1, &b1));
            let want1s = 20 + i32::from(sc) * s(&a0, &b0);
            // SAFETY: NEON is always present; the SDOT instantiations run only with dotprod;
            // each array holds 16 bytes.
            unsafe {
                let v = |a: &[i8; 16]| vld1q_s8(a.as_ptr());
                let acc = vdupq_n_s32(5);
                let (p0, p1) = ((v(&a0), v(&b0)), (v(&a1), v(&b1)));
                let got = |sdot: bool| {
                    let r = if sdot {
                        [
                            dot1::<true>(acc, v(&f), v(&b0)),
                            dot2::<true>(acc, p0, p1),
                            dot2_scaled::<true>(acc, p0, p1, sc),
                            dot1_scaled::<true>(acc, p0.0, p0.1, sc),
                        ]
                    } else {
                        [
                            dot1::<false>(acc, v(&f), v(&b0)),
                            dot2::<false>(acc, p0, p1),
                            dot2_scaled::<false>(acc, p0, p1, sc),
                            dot1_scaled::<false>(acc, p0.0, p0.1, sc),
                        ]
                    };
                    r.map(|v| vaddvq_s32(v))
                };
                let want = [want_full, want2, want2s, want1s];
                assert_eq!(got(false), want, "neon, round {round}");
                if dotprod {
                    assert_eq!(got(true), want, "dotprod, round {round}");
                }
            }
        }
    }
}
