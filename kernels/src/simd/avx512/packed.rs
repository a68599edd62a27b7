//! Multi-token kernels: one weight row against four activation rows, for Q4_0 and Q8_0.
//!
//! Each weight block is loaded and unpacked once per step and then used for all four rows. Per
//! row, every operation (block products, integer sums, FMA into the same accumulator, tail,
//! final reduction) is the one of the 1×1 kernel in `legacy`, in the same order, so the results
//! are bit-identical to four calls of it.
//!
//! The activation rows are those [`pack_q4_0`] / [`pack_q8_0`] rewrote once per matmul, so that
//! the work that depends only on the activations (gathering the vectors, 8·Σy, converting the
//! scales) is not redone for every weight row. Each four-block step starts with the four scales
//! as f32; the 1×1 kernel's lanes are kept, so results stay bit-identical to it. A tail of under
//! four blocks is copied unchanged. The layouts stay compact (four rows of a 4096-wide matmul
//! fit in L1): a version with every scale repeated in its lanes (no permutes) was slower for
//! that reason.

use super::legacy::{q4_0_levels, q8_0_levels, Q4_0_BYTES, Q8_0_BYTES};
use super::{join, ld512, ld_ps128, pick2};
use crate::blocks::{f16_at, q4_0, q8_0};
use crate::dot::{Dot4Fn, MatvecFn, Packer};
use crate::simd::avx2::legacy::{isums_q4_0, isums_q8_0};
use crate::simd::avx2::{fma_block, h, h4, hsum_ps, ld128, ld256, prefetch_ahead};
use llq_types::GgmlType::{self, *};
use std::arch::x86_64::*;

/// The kernels of this module, by weight type.
pub(super) const KERNELS: &[(GgmlType, MatvecFn, Dot4Fn, Packer)] = &[
    (
        Q4_0,
        q4_0_matvec,
        q4_0_x4,
        Packer {
            row_bytes: q4_0_packed_bytes,
            pack: pack_q4_0,
        },
    ),
    (
        Q8_0,
        q8_0_matvec,
        q8_0_x4,
        Packer {
            row_bytes: q8_0_packed_bytes,
            pack: pack_q8_0,
        },
    ),
];

/// Bytes of one four-block step of a Q4_0-packed row: the scales, then per pair of blocks the
/// low halves (32 bytes), the high halves (32) and the eight i32 lanes of −8·Σy (32).
const Q4_0_STEP: usize = 16 + 2 * 96;

/// Bytes of one four-block step of a Q8_0-packed row: the scales, then per pair of blocks the
/// levels + 128 as u8 (64 bytes).
const Q8_0_STEP: usize = 16 + 2 * 64;

fn packed_bytes(n: usize, step: usize) -> usize {
    let blocks = n / Q8_0.block_size();
    blocks / 4 * step + blocks % 4 * Q8_0_BYTES
}

fn q4_0_packed_bytes(n: usize) -> usize {
    packed_bytes(n, Q4_0_STEP)
}

fn q8_0_packed_bytes(n: usize) -> usize {
    packed_bytes(n, Q8_0_STEP)
}

/// Writes the four scales of each step as f32, calls `pack_step(four_blocks, rest_of_step)`,
/// then copies the tail.
fn pack_steps(n: usize, a: &[u8], out: &mut [u8], step: usize, pack_step: fn(&[u8], &mut [u8])) {
    assert_eq!(
        Q8_0.row_bytes(n),
        Some(a.len()),
        "Q8_0 activation row of {n}"
    );
    assert_eq!(out.len(), packed_bytes(n, step), "packed row of {n}");
    let steps = n / (4 * Q8_0.block_size());
    let four = 4 * Q8_0_BYTES;
    for (y, o) in a.chunks_exact(four).zip(out.chunks_exact_mut(step)) {
        for b in 0..4 {
            let d = f16_at(y, b * Q8_0_BYTES + q8_0::D);
            o[4 * b..4 * b + 4].copy_from_slice(&d.to_le_bytes());
        }
        pack_step(y, &mut o[16..]);
    }
    out[steps * step..].copy_from_slice(&a[steps * four..]);
}

/// Q8_0 activations for [`q4_0_rows`]: per pair of blocks (b0 in the low 128-bit lane, b1 in
/// the high one, as the 1×1 kernel pairs them) `ylo`, `yhi` and the lanes of
/// `−(vpdpbusd(8, ylo) + vpdpbusd(8, yhi))`.
fn pack_q4_0(n: usize, a: &[u8], out: &mut [u8]) {
    pack_steps(n, a, out, Q4_0_STEP, |y, o| {
        for p in 0..2 {
            let o = &mut o[96 * p..96 * (p + 1)];
            for (k, b) in [2 * p, 2 * p + 1].into_iter().enumerate() {
                let qs = q8_0_levels(y, b);
                o[16 * k..16 * k + 16].copy_from_slice(&qs[..16]);
                o[32 + 16 * k..32 + 16 * k + 16].copy_from_slice(&qs[16..]);
                for j in 0..4 {
                    let sum: i32 = (4 * j..4 * j + 4)
                        .map(|i| i32::from(qs[i] as i8) + i32::from(qs[16 + i] as i8))
                        .sum();
                    let lane = 16 * k + 4 * j;
                    o[64 + lane..68 + lane].copy_from_slice(&(-8 * sum).to_le_bytes());
                }
            }
        }
    });
}

/// Q8_0 activations for [`q8_0_rows`]: the levels + 128, as u8 so that `vpdpbusd` takes them
/// against the signed weights.
fn pack_q8_0(n: usize, a: &[u8], out: &mut [u8]) {
    pack_steps(n, a, out, Q8_0_STEP, |y, o| {
        for b in 0..4 {
            for (o, &q) in o[32 * b..32 * b + 32].iter_mut().zip(q8_0_levels(y, b)) {
                *o = q ^ 0x80;
            }
        }
    });
}

/// [`super::legacy`]'s Q4_0 row kernel for `N` activation rows packed by [`pack_q4_0`]: the same lanes, products and
/// accumulation order.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q4_0_rows<const N: usize>(w: &[u8], a: [&[u8]; N]) -> [f32; N] {
    let m4 = _mm256_set1_epi8(0x0f);
    let pick = [
        _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1),
        _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3),
    ];
    let z = _mm256_setzero_si256();
    let mut acc = [[_mm256_setzero_ps(); 2]; N];
    const FOUR: usize = 4 * Q4_0_BYTES;
    let steps = w.len() / FOUR;
    for i in 0..steps {
        let x = &w[FOUR * i..FOUR * (i + 1)];
        prefetch_ahead(x);
        let dx = step_scales(x);
        let mut lo = [z; 2];
        let mut hi = [z; 2];
        for p in 0..2 {
            let (x0, x1) = (q4_0_levels(x, 2 * p), q4_0_levels(x, 2 * p + 1));
            let q = _mm256_set_m128i(ld128(x1), ld128(x0));
            lo[p] = _mm256_and_si256(q, m4);
            hi[p] = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
        }
        for (a, acc) in a.iter().zip(acc.iter_mut()) {
            let y = &a[Q4_0_STEP * i..Q4_0_STEP * (i + 1)];
            let d = _mm256_castps128_ps256(_mm_mul_ps(dx, ld_ps128(y)));
            for (p, acc) in acc.iter_mut().enumerate() {
                let y = &y[16 + 96 * p..];
                // Starting from −8·Σy instead of subtracting it saves an instruction.
                let qy = _mm256_dpbusd_epi32(ld256(&y[64..]), lo[p], ld256(y));
                let isum = _mm256_dpbusd_epi32(qy, hi[p], ld256(&y[32..]));
                let dk = _mm256_permutevar8x32_ps(d, pick[p]);
                *acc = _mm256_fmadd_ps(dk, _mm256_cvtepi32_ps(isum), *acc);
            }
        }
    }
    let mut out = [0f32; N];
    for ((a, acc), out) in a.iter().zip(acc.iter_mut()).zip(out.iter_mut()) {
        let rest = w[FOUR * steps..]
            .chunks_exact(Q4_0_BYTES)
            .zip(a[Q4_0_STEP * steps..].chunks_exact(Q8_0_BYTES));
        for (x, y) in rest {
            fma_block(&mut acc[0], h(x, q4_0::D) * h(y, q8_0::D), isums_q4_0(x, y));
        }
        *out = hsum_ps(_mm256_add_ps(acc[0], acc[1]));
    }
    out
}

/// The four fp16 scales of a four-block Q4_0 step as f32, as [`h4`] gives them. Gathered in a
/// general-purpose register, which keeps the work off the vector units this kernel is bound
/// by: Q4_0 matvec 32 -> 38 GB/s on Zen 4. (Gathering with a 512-bit shuffle and narrowing was
/// slower still than vector inserts; the same change in [`h4`] for every type slowed Q8_0.
/// Four 16-bit loads: written as masked 64-bit loads, the compiler turned them into such a
/// shuffle, 26% slower.)
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn step_scales(x: &[u8]) -> __m128 {
    let at = |k: usize| {
        let d = k * Q4_0_BYTES + q4_0::D;
        u64::from(u16::from_le_bytes([x[d], x[d + 1]])) << (16 * k)
    };
    let bits = at(0) | at(1) | at(2) | at(3);
    _mm_cvtph_ps(_mm_cvtsi64_si128(bits as i64))
}

/// [`super::legacy`]'s Q8_0 row kernel for `N` activation rows packed by [`pack_q8_0`]. The 1×1 kernel's lanes are
/// Σ|x|·(sign(x)·y) over four bytes; here they are Σ(y + 128)·x − 128·Σx, the same integers,
/// with 128·Σx computed once per pair of weight blocks for all four rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q8_0_rows<const N: usize>(w: &[u8], a: [&[u8]; N]) -> [f32; N] {
    let z = _mm512_setzero_si512();
    let c128 = _mm512_set1_epi8(-128);
    let mut acc = [[_mm512_setzero_ps(); 2]; N];
    const FOUR: usize = 4 * Q8_0_BYTES;
    let steps = w.len() / FOUR;
    for i in 0..steps {
        let x = &w[FOUR * i..FOUR * (i + 1)];
        prefetch_ahead(x);
        let dx = h4(x, Q8_0_BYTES, q8_0::D);
        let mut xv = [z; 2];
        let mut x128 = [z; 2];
        for p in 0..2 {
            let (b0, b1) = (2 * p, 2 * p + 1);
            xv[p] = join(ld256(q8_0_levels(x, b0)), ld256(q8_0_levels(x, b1)));
            x128[p] = _mm512_dpbusd_epi32(z, c128, xv[p]);
        }
        for (a, acc) in a.iter().zip(acc.iter_mut()) {
            let y = &a[Q8_0_STEP * i..Q8_0_STEP * (i + 1)];
            let d = _mm_mul_ps(dx, ld_ps128(y));
            for (p, acc) in acc.iter_mut().enumerate() {
                let s = _mm512_dpbusd_epi32(z, ld512(&y[16 + 64 * p..]), xv[p]);
                let s = _mm512_sub_epi32(s, x128[p]);
                let dk = pick2(d, 2 * p as i32, 2 * p as i32 + 1);
                *acc = _mm512_fmadd_ps(dk, _mm512_cvtepi32_ps(s), *acc);
            }
        }
    }
    let mut out = [0f32; N];
    for ((a, acc), out) in a.iter().zip(acc.iter()).zip(out.iter_mut()) {
        let mut tail = _mm256_setzero_ps();
        let rest = w[FOUR * steps..]
            .chunks_exact(Q8_0_BYTES)
            .zip(a[Q8_0_STEP * steps..].chunks_exact(Q8_0_BYTES));
        for (x, y) in rest {
            fma_block(&mut tail, h(x, q8_0::D) * h(y, q8_0::D), isums_q8_0(x, y));
        }
        *out = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) + hsum_ps(tail);
    }
    out
}

/// Checks a packed-activation call: whole rows of `n` elements of `wt` in `w` (`rows` of
/// them), packed activation rows in `a`.
fn check_packed(
    n: usize,
    w: &[u8],
    rows: usize,
    a: &[&[u8]],
    wt: GgmlType,
    packed_bytes: fn(usize) -> usize,
) -> usize {
    let row = wt.row_bytes(n).expect("n is whole blocks");
    assert_eq!(w.len(), rows * row, "{rows} {wt} weight rows of {n}");
    for a in a {
        assert_eq!(a.len(), packed_bytes(n), "packed activation row of {n}");
    }
    row
}

/// The many-row and four-token entries of a packed-activation kernel `$rows::<N>`; `$loop` is
/// the feature-enabled loop over rows (one length check per call, not per row).
macro_rules! entry_packed {
    ($matvec:ident, $x4:ident, $loop:ident, $rows:ident, $wt:expr, $packed_bytes:ident) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        fn $loop(w: &[u8], row: usize, a: &[u8], out: &mut [f32]) {
            for (o, w) in out.iter_mut().zip(w.chunks_exact(row)) {
                *o = $rows(w, [a])[0];
            }
        }

        fn $matvec(n: usize, w: &[u8], a: &[u8], out: &mut [f32]) {
            let row = check_packed(n, w, out.len(), &[a], $wt, $packed_bytes);
            // SAFETY: as in `entry!` (`super`): only reachable through the table built by `table()`,
            // which checked every feature `$loop` and `$rows` are compiled for.
            unsafe { $loop(w, row, a, out) }
        }

        fn $x4(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
            check_packed(n, w, 1, &a, $wt, $packed_bytes);
            // SAFETY: as above.
            unsafe { $rows(w, a) }
        }
    };
}

entry_packed!(
    q4_0_matvec,
    q4_0_x4,
    q4_0_loop,
    q4_0_rows,
    Q4_0,
    q4_0_packed_bytes
);
entry_packed!(
    q8_0_matvec,
    q8_0_x4,
    q8_0_loop,
    q8_0_rows,
    Q8_0,
    q8_0_packed_bytes
);
