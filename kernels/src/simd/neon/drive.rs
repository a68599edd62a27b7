//! The loops every quantized NEON kernel shares. A type supplies its exact integer block sums
//! ([`Quant::sums`]) and where its float factors are ([`Factors`]); the loops here apply the
//! factors with the scalar reference's operations, in its order, four blocks at a time:
//! - [`row`]: one row, four consecutive blocks per step for the 32-element types (their
//!   values computed together, then added to the sum one after the other) and one super-block
//!   per step for the K-quants;
//! - [`matvec`]: four weight rows at a time against one activation row, a row per lane;
//! - [`dot4`]: one weight row against four activation rows, a token per lane.
//!
//! In each, a lane's sum starts at 0.0 and adds its row's block values in block order: the
//! scalar reference's fold, so the results are the same bits.

use super::reduce4;
use super::{gather_f32, h4};
use crate::blocks::q8_k;
use llq_types::GgmlType;
use std::arch::aarch64::*;

/// A block's exact integer sums, each as four i32 lanes to be added up: `i` the scaled level
/// products, `m` the second sum the factors use (the K-quants' mins; zero where unused).
#[derive(Clone, Copy)]
pub(super) struct Sums {
    pub i: int32x4_t,
    pub m: int32x4_t,
}

/// How a type's block value is formed from its integer sums, and where its factors are (byte
/// offsets in the weight block `x` and the activation block `y`): the scalar reference's
/// formula of its block file.
#[derive(Clone, Copy)]
pub(super) enum Factors {
    /// `(d·dy)·isum`, then `+ m·s` when `affine` holds the offsets of `m` (in `x`) and `s` (in
    /// `y`): the legacy types, every factor an fp16.
    Legacy {
        d: usize,
        dy: usize,
        affine: Option<(usize, usize)>,
    },
    /// `(d·dy)·isum`, then `− (dmin·dy)·msum` when the type has mins: the K-quants, `d` and
    /// `dmin` fp16, `dy` the Q8_K block's f32.
    KQuant { d: usize, dmin: Option<usize> },
}

/// A quantized weight type's NEON kernel.
pub(super) trait Quant {
    /// The weight type and its activation type.
    const WT: GgmlType;
    const AT: GgmlType = match Self::WT.activation() {
        Some(at) => at,
        None => panic!("a weight type"),
    };
    const FACTORS: Factors;
    /// Bytes of a weight block and of an activation block.
    const WB: usize = Self::WT.type_size();
    const AB: usize = Self::AT.type_size();
    /// Whether [`row`] takes four blocks per step (short blocks, where the float part per block
    /// is a large share of the work) or one.
    const STEP4: bool = Self::WT.block_size() == 32;

    /// The exact integer sums of weight block `x` against activation block `y`.
    ///
    /// # Safety
    /// With `SDOT`, the CPU has dotprod.
    unsafe fn sums<const SDOT: bool>(x: &[u8], y: &[u8]) -> Sums;
}

/// The values of four blocks, lane `k` that of `xs[k]` against `ys[k]` with sums `sums[k]`,
/// each computed as the scalar reference computes it.
#[inline(always)]
fn values<Q: Quant>(xs: [&[u8]; 4], ys: [&[u8]; 4], sums: [Sums; 4]) -> float32x4_t {
    // SAFETY: NEON, all these intrinsics need, is part of every aarch64 CPU.
    unsafe {
        let i = vcvtq_f32_s32(reduce4([sums[0].i, sums[1].i, sums[2].i, sums[3].i]));
        match Q::FACTORS {
            Factors::Legacy { d, dy, affine } => {
                let v = vmulq_f32(vmulq_f32(h4(xs, d), h4(ys, dy)), i);
                match affine {
                    Some((m, s)) => vaddq_f32(v, vmulq_f32(h4(xs, m), h4(ys, s))),
                    None => v,
                }
            }
            Factors::KQuant { d, dmin } => {
                let dy = gather_f32(ys, q8_k::D);
                let v = vmulq_f32(vmulq_f32(h4(xs, d), dy), i);
                match dmin {
                    Some(dmin) => {
                        let m = [sums[0].m, sums[1].m, sums[2].m, sums[3].m];
                        let m = vcvtq_f32_s32(reduce4(m));
                        vsubq_f32(v, vmulq_f32(vmulq_f32(h4(xs, dmin), dy), m))
                    }
                    None => v,
                }
            }
        }
    }
}

/// The value of one block, as the scalar reference computes it.
///
/// # Safety
/// With `SDOT`, the CPU has dotprod.
#[inline(always)]
unsafe fn value<Q: Quant, const SDOT: bool>(x: &[u8], y: &[u8]) -> f32 {
    let s = Q::sums::<SDOT>(x, y);
    vgetq_lane_f32::<0>(values::<Q>([x; 4], [y; 4], [s; 4]))
}

/// `b` split into its first four pieces of `size` bytes.
#[inline(always)]
fn split4(b: &[u8], size: usize) -> [&[u8]; 4] {
    let (b0, rest) = b.split_at(size);
    let (b1, rest) = rest.split_at(size);
    let (b2, rest) = rest.split_at(size);
    [b0, b1, b2, &rest[..size]]
}

/// The dot product of weight row `w` with activation row `a` (lengths checked by the caller).
///
/// # Safety
/// With `SDOT`, the CPU has dotprod.
#[inline(always)]
pub(super) unsafe fn row<Q: Quant, const SDOT: bool>(w: &[u8], a: &[u8]) -> f32 {
    let (wb, ab) = (Q::WB, Q::AB);
    let mut s = 0f32;
    let (mut w, mut a) = (w, a);
    if Q::STEP4 {
        let mut wc = w.chunks_exact(4 * wb);
        let mut ac = a.chunks_exact(4 * ab);
        for (x, y) in (&mut wc).zip(&mut ac) {
            let (xs, ys) = (split4(x, wb), split4(y, ab));
            let sums = [
                Q::sums::<SDOT>(xs[0], ys[0]),
                Q::sums::<SDOT>(xs[1], ys[1]),
                Q::sums::<SDOT>(xs[2], ys[2]),
                Q::sums::<SDOT>(xs[3], ys[3]),
            ];
            let v = values::<Q>(xs, ys, sums);
            // One after the other, as the reference adds them.
            s += vgetq_lane_f32::<0>(v);
            s += vgetq_lane_f32::<1>(v);
            s += vgetq_lane_f32::<2>(v);
            s += vgetq_lane_f32::<3>(v);
        }
        (w, a) = (wc.remainder(), ac.remainder());
    }
    for (x, y) in w.chunks_exact(wb).zip(a.chunks_exact(ab)) {
        s += value::<Q, SDOT>(x, y);
    }
    s
}

/// `out[r]` = weight row `r` of `w` (rows of `row` bytes) · activation row `a`, four rows at a
/// time (lengths checked by the caller).
///
/// # Safety
/// With `SDOT`, the CPU has dotprod.
#[inline(always)]
pub(super) unsafe fn matvec<Q: Quant, const SDOT: bool>(
    row_bytes: usize,
    w: &[u8],
    a: &[u8],
    out: &mut [f32],
) {
    let (wb, ab) = (Q::WB, Q::AB);
    let mut oc = out.chunks_exact_mut(4);
    let mut wc = w.chunks_exact(4 * row_bytes);
    for (o, w4) in (&mut oc).zip(&mut wc) {
        let r = split4(w4, row_bytes);
        let blocks = r[0]
            .chunks_exact(wb)
            .zip(r[1].chunks_exact(wb))
            .zip(r[2].chunks_exact(wb))
            .zip(r[3].chunks_exact(wb))
            .zip(a.chunks_exact(ab));
        let mut acc = vdupq_n_f32(0.0);
        for ((((x0, x1), x2), x3), y) in blocks {
            let xs = [x0, x1, x2, x3];
            let sums = [
                Q::sums::<SDOT>(x0, y),
                Q::sums::<SDOT>(x1, y),
                Q::sums::<SDOT>(x2, y),
                Q::sums::<SDOT>(x3, y),
            ];
            acc = vaddq_f32(acc, values::<Q>(xs, [y; 4], sums));
        }
        store4(o, acc);
    }
    let rest = oc.into_remainder();
    for (o, w) in rest.iter_mut().zip(wc.remainder().chunks_exact(row_bytes)) {
        *o = row::<Q, SDOT>(w, a);
    }
}

/// Weight row `w` against activation rows `a[0..4]` (lengths checked by the caller).
///
/// # Safety
/// With `SDOT`, the CPU has dotprod.
#[inline(always)]
pub(super) unsafe fn dot4<Q: Quant, const SDOT: bool>(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    let (wb, ab) = (Q::WB, Q::AB);
    let blocks = w
        .chunks_exact(wb)
        .zip(a[0].chunks_exact(ab))
        .zip(a[1].chunks_exact(ab))
        .zip(a[2].chunks_exact(ab))
        .zip(a[3].chunks_exact(ab));
    let mut acc = vdupq_n_f32(0.0);
    for ((((x, y0), y1), y2), y3) in blocks {
        let ys = [y0, y1, y2, y3];
        let sums = [
            Q::sums::<SDOT>(x, y0),
            Q::sums::<SDOT>(x, y1),
            Q::sums::<SDOT>(x, y2),
            Q::sums::<SDOT>(x, y3),
        ];
        acc = vaddq_f32(acc, values::<Q>([x; 4], ys, sums));
    }
    let mut out = [0f32; 4];
    store4(&mut out, acc);
    out
}

/// The four lanes of `v` into `o`.
#[inline]
#[target_feature(enable = "neon")]
fn store4(o: &mut [f32], v: float32x4_t) {
    let o = &mut o[..4];
    // SAFETY: `o` holds 4 writable f32.
    unsafe { vst1q_f32(o.as_mut_ptr(), v) }
}
