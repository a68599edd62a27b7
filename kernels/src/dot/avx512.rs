//! AVX-512 (F, BW, VL) + VNNI dot kernels (x86_64) for the types that dominate token generation:
//! Q4_0, Q8_0 and Q6_K. Every other type keeps its AVX2 kernel in this table.
//!
//! Same structure as [`super::avx2`]: safe `#[target_feature]` functions behind private wrappers
//! that [`table`] installs only after `is_x86_feature_detected!` confirmed every feature they are
//! compiled for (AVX-512 F/BW/VL/VNNI plus AVX2, FMA, F16C: a superset of the AVX2 table's, whose
//! helpers are reused for block tails). The only other `unsafe` is the unaligned 64-byte load in
//! [`ld512`], from a slice checked to hold it.
//!
//! Integer parts equal the scalar reference's exactly. `vpdpbusd` (u8 × i8, four products summed
//! into an i32 lane) and `vpdpwssd` (i16 × i16, two products into an i32 lane) widen before they
//! add and never saturate; `maddubs` is used only where its i16 pair sums stay far from saturation
//! (|q|·|y| ≤ 63·127, two per pair).
//!
//! Vector width per kernel was chosen by measurement on Zen 4, which executes 512-bit operations
//! as two 256-bit halves: Q8_0 (two blocks per 512-bit vector) and Q6_K (64 elements per vector)
//! gain from the wider loads and fewer instructions; Q4_0 is fastest in 256-bit vectors with
//! VNNI (AVX512VL), where its 512-bit version needed extra cross-lane shuffles and was no faster
//! than AVX2. A Q4_K kernel (512- and 256-bit) did not beat AVX2 and is not included.

use super::avx2::{
    bsum_dot16, fma_block, h, h4, hsum_ps, isums_q4_0, isums_q8_0, ld128, ld256, YQ,
};
use super::{check, Dot4Fn, DotFn, DotTable, MatvecFn, Packer};
use crate::blocks::f32_at;
use llq_types::GgmlType::{self, *};
use std::arch::x86_64::*;

/// The table with the AVX-512 kernels over the AVX2 ones, or `None` when the CPU lacks any of
/// AVX-512 F/BW/VL/VNNI, AVX2, FMA or F16C.
pub(super) fn table() -> Option<DotTable> {
    let has = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni");
    if !has {
        return None;
    }
    // Checks AVX2, FMA and F16C.
    let mut t = super::avx2::table()?;
    t.isa = "avx512vnni";
    let entries: [(GgmlType, DotFn); 3] = [(Q4_0, q4_0), (Q8_0, q8_0), (Q6_K, q6_k)];
    for (ty, dot) in entries {
        t.set(ty, dot);
    }
    let packed: [(GgmlType, MatvecFn, Dot4Fn, Packer); 2] = [
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
    for (ty, matvec, dot4, packer) in packed {
        t.set_packed(ty, matvec, dot4, packer);
    }
    for g in super::gemm::kernels() {
        t.set_gemm(g);
    }
    Some(t)
}

/// 64 bytes from the start of `s`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn ld512(s: &[u8]) -> __m512i {
    let s = &s[..64];
    // SAFETY: `s` holds 64 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
}

/// `lo` in the low 256 bits, `hi` in the high 256 bits.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// 32 i16 lanes: `a` in the low 16, `b` in the high 16.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn halves16(a: i16, b: i16) -> __m512i {
    _mm512_mask_blend_epi16(0xffff_0000, _mm512_set1_epi16(a), _mm512_set1_epi16(b))
}

/// 32 i16 lanes: `a`, `b`, `c`, `d` in the four 128-bit lanes, low to high.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn quarters16(a: i16, b: i16, c: i16, d: i16) -> __m512i {
    let ab = _mm512_mask_blend_epi16(0x0000_ff00, _mm512_set1_epi16(a), _mm512_set1_epi16(b));
    let abc = _mm512_mask_blend_epi16(0x00ff_0000, ab, _mm512_set1_epi16(c));
    _mm512_mask_blend_epi16(0xff00_0000, abc, _mm512_set1_epi16(d))
}

/// Block products `d` (lanes 0..4 of a 128-bit vector): lane `i` in i32 lanes 0..8, lane `j` in
/// lanes 8..16.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn pick2(d: __m128, i: i32, j: i32) -> __m512 {
    let idx = _mm512_mask_blend_epi32(0xff00, _mm512_set1_epi32(i), _mm512_set1_epi32(j));
    _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(d))
}

/// Two Q8_0 blocks against two Q8_0 activation blocks (32 bytes each): Σ x·y in 16 i32 lanes.
/// |x| goes in as u8 (−128 becomes 128, still exact) and x's sign moves onto y, which must not
/// hold −128 (activation quantizers never produce it).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn isums2_q8_0(x0: &[u8], x1: &[u8], y0: &[u8], y1: &[u8]) -> __m512i {
    let x = join(ld256(x0), ld256(x1));
    let y = join(ld256(y0), ld256(y1));
    let z = _mm512_setzero_si512();
    let neg = _mm512_movepi8_mask(x);
    let sy = _mm512_mask_sub_epi8(y, neg, z, y);
    _mm512_dpbusd_epi32(z, _mm512_abs_epi8(x), sy)
}

/// A row of 34-byte-activation legacy blocks, four per step: the four `d·dy` are converted as one
/// vector, each pair of blocks goes through `$isums2` and is scaled into its own accumulator.
/// A tail of under four blocks goes one by one through the AVX2 `$isums1`.
macro_rules! quad_loop {
    ($w:expr, $a:expr, $wb:expr, $qs:expr, $isums2:ident, $isums1:ident) => {{
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        const WB: usize = $wb;
        const QS: usize = $qs;
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut wc = w.chunks_exact(4 * WB);
        let mut ac = a.chunks_exact(4 * 34);
        for (x, y) in (&mut wc).zip(&mut ac) {
            let d = _mm_mul_ps(h4(x, WB, 0), h4(y, 34, 0));
            for (p, acc) in acc.iter_mut().enumerate() {
                let (b0, b1) = (2 * p, 2 * p + 1);
                let s = $isums2(
                    &x[WB * b0 + 2..WB * b0 + 2 + QS],
                    &x[WB * b1 + 2..WB * b1 + 2 + QS],
                    &y[34 * b0 + 2..34 * b0 + 34],
                    &y[34 * b1 + 2..34 * b1 + 34],
                );
                let dk = pick2(d, b0 as i32, b1 as i32);
                *acc = _mm512_fmadd_ps(dk, _mm512_cvtepi32_ps(s), *acc);
            }
        }
        let mut tail = _mm256_setzero_ps();
        let rest = wc
            .remainder()
            .chunks_exact(WB)
            .zip(ac.remainder().chunks_exact(34));
        for (x, y) in rest {
            fma_block(&mut tail, h(x, 0) * h(y, 0), $isums1(x, y));
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) + hsum_ps(tail)
    }};
}

/// Q4_0 with 256-bit VNNI (AVX512VL): pairs of blocks as in the AVX2 kernel (block k in the low
/// 128-bit lane, k+1 in the high one; low nibbles in one vector, high nibbles in another), each
/// `maddubs` + `madd` pair replaced by one `vpdpbusd`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q4_0_row(w: &[u8], a: &[u8]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let eight = _mm256_set1_epi8(8);
    let pick = [
        _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1),
        _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3),
    ];
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut wc = w.chunks_exact(4 * 18);
    let mut ac = a.chunks_exact(4 * 34);
    for (x, y) in (&mut wc).zip(&mut ac) {
        let d = _mm256_castps128_ps256(_mm_mul_ps(h4(x, 18, 0), h4(y, 34, 0)));
        for (p, acc) in acc.iter_mut().enumerate() {
            let (x0, x1) = (&x[36 * p + 2..36 * p + 18], &x[36 * p + 20..36 * p + 36]);
            let (y0, y1) = (&y[68 * p + 2..68 * p + 34], &y[68 * p + 36..68 * p + 68]);
            let q = _mm256_set_m128i(ld128(x1), ld128(x0));
            let lo = _mm256_and_si256(q, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
            let ylo = _mm256_set_m128i(ld128(y1), ld128(y0));
            let yhi = _mm256_set_m128i(ld128(&y1[16..]), ld128(&y0[16..]));
            let z = _mm256_setzero_si256();
            let qy = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, lo, ylo), hi, yhi);
            let y8 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, eight, ylo), eight, yhi);
            let dk = _mm256_permutevar8x32_ps(d, pick[p]);
            *acc = _mm256_fmadd_ps(dk, _mm256_cvtepi32_ps(_mm256_sub_epi32(qy, y8)), *acc);
        }
    }
    let rest = wc
        .remainder()
        .chunks_exact(18)
        .zip(ac.remainder().chunks_exact(34));
    for (x, y) in rest {
        fma_block(&mut acc[0], h(x, 0) * h(y, 0), isums_q4_0(x, y));
    }
    hsum_ps(_mm256_add_ps(acc[0], acc[1]))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q8_0_row(w: &[u8], a: &[u8]) -> f32 {
    quad_loop!(w, a, 34, 32, isums2_q8_0, isums_q8_0)
}

// ---- Multi-token kernels: one weight row against four activation rows. ----
//
// Each weight block is loaded and unpacked once per step and then used for all four rows. Per
// row, every operation (block products, integer sums, FMA into the same accumulator, tail,
// final reduction) is the one of the 1×1 kernel above, in the same order, so the results are
// bit-identical to four calls of it.

// Packed activations: the multi-token kernels below read activation rows that [`pack_q4_0`] /
// [`pack_q8_0`] rewrote once per matmul, so that the work that depends only on the activations
// (gathering the vectors, 8·Σy, converting the scales) is not redone for every weight row.
// Each four-block step starts with the four scales as f32; the 1×1 kernel's lanes are kept, so
// results stay bit-identical to it. A tail of under four blocks is copied unchanged. The
// layouts stay compact (four rows of a 4096-wide matmul fit in L1): a version with every
// scale repeated in its lanes (no permutes) was slower for that reason.

/// Bytes of one four-block step of a Q4_0-packed row: the scales, then per pair of blocks the
/// low halves (32 bytes), the high halves (32) and the eight i32 lanes of −8·Σy (32).
const Q4_0_STEP: usize = 16 + 2 * 96;

/// Bytes of one four-block step of a Q8_0-packed row: the scales, then per pair of blocks the
/// levels + 128 as u8 (64 bytes).
const Q8_0_STEP: usize = 16 + 2 * 64;

fn packed_bytes(n: usize, step: usize) -> usize {
    let blocks = n / 32;
    blocks / 4 * step + blocks % 4 * 34
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
    let steps = n / 128;
    for (y, o) in a.chunks_exact(136).zip(out.chunks_exact_mut(step)) {
        for b in 0..4 {
            let d = crate::float::f16_bits_to_f32(u16::from_le_bytes([y[34 * b], y[34 * b + 1]]));
            o[4 * b..4 * b + 4].copy_from_slice(&d.to_le_bytes());
        }
        pack_step(y, &mut o[16..]);
    }
    out[steps * step..].copy_from_slice(&a[steps * 136..]);
}

/// Q8_0 activations for [`q4_0_row_x4`]: per pair of blocks (b0 in the low 128-bit lane, b1 in
/// the high one, as the 1×1 kernel pairs them) `ylo`, `yhi` and the lanes of
/// `−(vpdpbusd(8, ylo) + vpdpbusd(8, yhi))`.
fn pack_q4_0(n: usize, a: &[u8], out: &mut [u8]) {
    pack_steps(n, a, out, Q4_0_STEP, |y, o| {
        for p in 0..2 {
            let o = &mut o[96 * p..96 * (p + 1)];
            for (k, b) in [2 * p, 2 * p + 1].into_iter().enumerate() {
                let qs = &y[34 * b + 2..34 * b + 34];
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

/// Q8_0 activations for [`q8_0_row_x4`]: the levels + 128, as u8 so that `vpdpbusd` takes them
/// against the signed weights.
fn pack_q8_0(n: usize, a: &[u8], out: &mut [u8]) {
    pack_steps(n, a, out, Q8_0_STEP, |y, o| {
        for b in 0..4 {
            for (o, &q) in o[32 * b..32 * b + 32]
                .iter_mut()
                .zip(&y[34 * b + 2..34 * b + 34])
            {
                *o = q ^ 0x80;
            }
        }
    });
}

/// [`q4_0_row`] for `N` activation rows packed by [`pack_q4_0`]: the same lanes, products and
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
    let steps = w.len() / (4 * 18);
    for i in 0..steps {
        let x = &w[72 * i..72 * i + 72];
        let dx = step_scales(x);
        let mut lo = [z; 2];
        let mut hi = [z; 2];
        for p in 0..2 {
            let (x0, x1) = (&x[36 * p + 2..36 * p + 18], &x[36 * p + 20..36 * p + 36]);
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
        let rest = w[72 * steps..]
            .chunks_exact(18)
            .zip(a[Q4_0_STEP * steps..].chunks_exact(34));
        for (x, y) in rest {
            fma_block(&mut acc[0], h(x, 0) * h(y, 0), isums_q4_0(x, y));
        }
        *out = hsum_ps(_mm256_add_ps(acc[0], acc[1]));
    }
    out
}

/// The four fp16 scales of a four-block Q4_0 step (bytes 0, 18, 36, 54 of `x`) as f32, as
/// [`h4`] gives them. Gathered in a general-purpose register (scale k is bits 16k.. of the
/// 8 bytes at 16k), which keeps the work off the vector units this kernel is bound by: Q4_0
/// matvec 32 -> 38 GB/s on Zen 4. (Gathering with a 512-bit shuffle and narrowing was slower
/// still than vector inserts; the same change in [`h4`] for every type slowed Q8_0.)
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn step_scales(x: &[u8]) -> __m128 {
    let at = |k: usize| u64::from_le_bytes(x[16 * k..16 * k + 8].try_into().unwrap());
    let bits = (0..4).fold(0u64, |b, k| b | (at(k) & (0xffff << (16 * k))));
    _mm_cvtph_ps(_mm_cvtsi64_si128(bits as i64))
}

/// 4 f32 from the start of `s`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn ld_ps128(s: &[u8]) -> __m128 {
    let s = &s[..16];
    // SAFETY: `s` holds 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_ps(s.as_ptr().cast()) }
}

/// [`q8_0_row`] for `N` activation rows packed by [`pack_q8_0`]. The 1×1 kernel's lanes are
/// Σ|x|·(sign(x)·y) over four bytes; here they are Σ(y + 128)·x − 128·Σx, the same integers,
/// with 128·Σx computed once per pair of weight blocks for all four rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q8_0_rows<const N: usize>(w: &[u8], a: [&[u8]; N]) -> [f32; N] {
    let z = _mm512_setzero_si512();
    let c128 = _mm512_set1_epi8(-128);
    let mut acc = [[_mm512_setzero_ps(); 2]; N];
    let steps = w.len() / (4 * 34);
    for i in 0..steps {
        let x = &w[136 * i..136 * i + 136];
        let dx = h4(x, 34, 0);
        let mut xv = [z; 2];
        let mut x128 = [z; 2];
        for p in 0..2 {
            let (b0, b1) = (2 * p, 2 * p + 1);
            xv[p] = join(
                ld256(&x[34 * b0 + 2..34 * b0 + 34]),
                ld256(&x[34 * b1 + 2..34 * b1 + 34]),
            );
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
        let rest = w[136 * steps..]
            .chunks_exact(34)
            .zip(a[Q8_0_STEP * steps..].chunks_exact(34));
        for (x, y) in rest {
            fma_block(&mut tail, h(x, 0) * h(y, 0), isums_q8_0(x, y));
        }
        *out = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) + hsum_ps(tail);
    }
    out
}

// ---- K-quants: one 256-element super-block against one Q8_K block per call. ----

/// The two-accumulator loop over a row of super-blocks: `$blk(x, y, &mut acc, &mut extra)`
/// adds one block. Yields `hsum(acc) + extra`.
macro_rules! row_loop {
    ($w:expr, $a:expr, $wb:expr, $blk:ident) => {{
        let (w, a): (&[u8], &[u8]) = ($w, $a);
        const WB: usize = $wb;
        const AB: usize = 292;
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut extra = 0f32;
        let mut wc = w.chunks_exact(2 * WB);
        let mut ac = a.chunks_exact(2 * AB);
        for (x, y) in (&mut wc).zip(&mut ac) {
            $blk(&x[..WB], &y[..AB], &mut acc0, &mut extra);
            $blk(&x[WB..], &y[AB..], &mut acc1, &mut extra);
        }
        let rest = wc
            .remainder()
            .chunks_exact(WB)
            .zip(ac.remainder().chunks_exact(AB));
        for (x, y) in rest {
            $blk(x, y, &mut acc0, &mut extra);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + extra
    }};
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn fma_block512(acc: &mut __m512, d: f32, sums: __m512i) {
    *acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sums), *acc);
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn blk_q6_k(x: &[u8], y: &[u8], acc: &mut __m512, _: &mut f32) {
    let dy = f32_at(y, 0);
    let sc = &x[192..208];
    // Levels are stored +32: take 32·Σ sc_j·bsum_j off in the integer lanes.
    let sc16 = _mm256_cvtepi8_epi16(ld128(sc));
    let off = _mm256_slli_epi32::<5>(bsum_dot16(y, sc16));
    let mut sums = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), off));
    let m4 = _mm512_set1_epi8(0x0f);
    let m2 = _mm512_set1_epi8(0x30);
    // Per 16-bit lane shift counts: the low 256 bits take the bits for elements 0..32 of a
    // quarter, the high 256 bits those for 32..64.
    let shl = halves16(4, 2);
    let shr = halves16(0, 2);
    for n in 0..2 {
        // 64 low-bit bytes: elements 128n + 0..64 in the low nibbles, + 64..128 in the high.
        let ql = ld512(&x[64 * n..]);
        let qh = _mm512_broadcast_i64x4(ld256(&x[128 + 32 * n..]));
        let lo = _mm512_or_si512(
            _mm512_and_si512(ql, m4),
            _mm512_and_si512(_mm512_sllv_epi16(qh, shl), m2),
        );
        let hi = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16::<4>(ql), m4),
            _mm512_and_si512(_mm512_srlv_epi16(qh, shr), m2),
        );
        for (k, q) in [lo, hi].into_iter().enumerate() {
            let yv = ld512(&y[YQ + 128 * n + 64 * k..]);
            // One 16-element sub-block per 128-bit lane.
            let j = 8 * n + 4 * k;
            let s = |i: usize| i16::from(sc[j + i] as i8);
            let scales = quarters16(s(0), s(1), s(2), s(3));
            sums = _mm512_dpwssd_epi32(sums, _mm512_maddubs_epi16(q, yv), scales);
        }
    }
    fma_block512(acc, h(x, 208) * dy, sums);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q6_k_row(w: &[u8], a: &[u8]) -> f32 {
    row_loop!(w, a, 210, blk_q6_k)
}

// ---- Table entries: check the lengths, then enter the feature-enabled code. ----

macro_rules! entry {
    ($name:ident, $row:ident, $wt:expr) => {
        fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            check(n, w, a, $wt);
            // SAFETY: this function is only reachable through the table built by `table()`,
            // which checked that the CPU has AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C.
            unsafe { $row(w, a) }
        }
    };
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
            // SAFETY: as in `entry!`: only reachable through the table built by `table()`,
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

entry!(q4_0, q4_0_row, Q4_0);
entry!(q8_0, q8_0_row, Q8_0);
entry!(q6_k, q6_k_row, Q6_K);
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
