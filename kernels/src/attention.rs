//! The f32 pieces of attention: the dot products of a query with cached keys ([`dots`]), the
//! softmax of the scores ([`softmax`]) and their weighted sum of cached values ([`axpys`]).
//! Portable code written in eight lanes, which the compiler vectorizes; on x86_64 the same code
//! compiled for AVX2 (`crate::simd::avx2::attention`) runs where the CPU has it. Both give the
//! same bits: the lanes, products and summation order are the same, and nothing is fused.

#[cfg(target_arch = "x86_64")]
use crate::simd::avx2::attention as avx2;

/// Rows `p` of `m` as attention stores keys and values: `len` values at `p * stride + off`.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub m: &'a [f32],
    pub stride: usize,
    pub off: usize,
    pub len: usize,
}

impl<'a> Rows<'a> {
    #[inline(always)]
    pub(crate) fn row(&self, p: usize) -> &'a [f32] {
        &self.m[p * self.stride + self.off..][..self.len]
    }
}

/// `out[p] = q · rows[p]` for `p < out.len()`, in f32 with eight independent partial sums per
/// row (a single running sum is a dependency chain the compiler may not reorder into SIMD),
/// summed pairwise, four rows per pass over `q`. Same lanes and order with or without AVX2,
/// so the same result.
pub fn dots(q: &[f32], rows: Rows, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if wide_simd() {
        // SAFETY: `wide_simd` checked that the CPU has AVX2.
        return unsafe { avx2::dots(q, rows, out) };
    }
    dots_lanes(q, rows, out)
}

#[inline(always)]
fn dots_lanes(q: &[f32], rows: Rows, out: &mut [f32]) {
    assert_eq!(q.len(), rows.len, "query and key widths");
    let done = out.len() / 4 * 4;
    let mut groups = out.chunks_exact_mut(4);
    for (g, o) in (&mut groups).enumerate() {
        let r: [&[f32]; 4] = std::array::from_fn(|k| rows.row(4 * g + k));
        o.copy_from_slice(&dot_rows(q, r));
    }
    for (i, o) in groups.into_remainder().iter_mut().enumerate() {
        *o = dot_rows(q, [rows.row(done + i)])[0];
    }
}

/// `q · r` for each of the `N` rows: per row, eight lanes over whole chunks of 8 summed in
/// lane order, plus the tail.
#[inline(always)]
fn dot_rows<const N: usize>(q: &[f32], r: [&[f32]; N]) -> [f32; N] {
    let mut acc = [[0f32; 8]; N];
    let chunks = q.len() / 8;
    let whole = 8 * chunks;
    let r8 = r.map(|r| &r[..whole]);
    for c in 0..chunks {
        let qv: &[f32; 8] = q[8 * c..8 * c + 8].try_into().expect("chunk of 8");
        for k in 0..N {
            let rv: &[f32; 8] = r8[k][8 * c..8 * c + 8].try_into().expect("chunk of 8");
            for i in 0..8 {
                acc[k][i] += qv[i] * rv[i];
            }
        }
    }
    std::array::from_fn(|k| {
        let tail: f32 = q[whole..]
            .iter()
            .zip(&r[k][whole..])
            .map(|(x, y)| x * y)
            .sum();
        // A fixed pairwise order, which SIMD reduces in three steps.
        let a = &acc[k];
        let s4: [f32; 4] = std::array::from_fn(|i| a[i] + a[i + 4]);
        ((s4[0] + s4[2]) + (s4[1] + s4[3])) + tail
    })
}

/// `y += Σ_p w[p] · rows[p]`, row after row as a sequence of `y += a · x` would (the same
/// order per element, so the same result), with 32 elements of `y` kept in registers across
/// all rows rather than loaded and stored for each.
pub fn axpys(w: &[f32], rows: Rows, y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if wide_simd() {
        // SAFETY: `wide_simd` checked that the CPU has AVX2.
        return unsafe { avx2::axpys(w, rows, y) };
    }
    axpys_lanes(w, rows, y)
}

#[inline(always)]
pub(crate) fn axpys_lanes(w: &[f32], rows: Rows, y: &mut [f32]) {
    assert_eq!(y.len(), rows.len, "output and value widths");
    const W: usize = 32;
    let done = y.len() / W * W;
    let mut chunks = y.chunks_exact_mut(W);
    for (c, yc) in (&mut chunks).enumerate() {
        let mut acc: [f32; W] = yc.try_into().expect("chunk of W");
        for (p, &a) in w.iter().enumerate() {
            for (s, x) in acc.iter_mut().zip(&rows.row(p)[W * c..W * (c + 1)]) {
                *s += a * x;
            }
        }
        yc.copy_from_slice(&acc);
    }
    let rest = chunks.into_remainder();
    for (p, &a) in w.iter().enumerate() {
        for (s, x) in rest.iter_mut().zip(&rows.row(p)[done..]) {
            *s += a * x;
        }
    }
}

/// AVX2 is there and the kernels are not forced to the scalar reference (`LLQ_KERNELS=scalar`
/// runs the portable code everywhere).
#[cfg(target_arch = "x86_64")]
fn wide_simd() -> bool {
    static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WIDE.get_or_init(|| is_x86_feature_detected!("avx2") && crate::dot::active_isa() != "scalar")
}

/// Softmax in place, stable against large logits; the sum in f64. The exponentials come from
/// `exp_lanes` eight at a time (a libm call per score was a fifth of `llq compare`'s time on
/// the small fixture), the same code with or without AVX2, so the same result.
pub fn softmax(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if wide_simd() {
        // SAFETY: `wide_simd` checked that the CPU has AVX2.
        return unsafe { avx2::softmax(x) };
    }
    softmax_lanes(x)
}

#[inline(always)]
pub(crate) fn softmax_lanes(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut v = [0f32; 8];
        for (v, &c) in v.iter_mut().zip(c.iter()) {
            *v = c - max;
        }
        c.copy_from_slice(&exp_lanes(v));
    }
    let rest = chunks.into_remainder();
    let mut tail = [f32::NEG_INFINITY; 8];
    tail[..rest.len()]
        .iter_mut()
        .zip(rest.iter())
        .for_each(|(t, v)| *t = v - max);
    let tail = exp_lanes(tail);
    rest.copy_from_slice(&tail[..rest.len()]);
    // Eight partial sums (one running sum is a chain of dependent adds), then pairwise.
    let mut lanes = [0f64; 8];
    for c in x.chunks(8) {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += f64::from(v);
        }
    }
    let sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `e^x` for eight values of at most 88 (Cephes' `expf`: `x = n·ln 2 + r`, a degree-6
/// polynomial in `r`, times `2^n`), within 2 ulp of libm's (checked in the tests); below
/// −87.3 (where `2^n` would leave the normal range) it returns 0. Plain arithmetic and
/// selects, so the compiler vectorizes it; no FMA, so every build rounds the same way.
#[inline(always)]
fn exp_lanes(x: [f32; 8]) -> [f32; 8] {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ];
    let mut out = [0f32; 8];
    for (o, &v) in out.iter_mut().zip(&x) {
        let n = (v * LOG2E + 0.5).floor();
        let r = v - n * C1 - n * C2;
        let mut p = 0.0f32;
        for c in P {
            p = p * r + c;
        }
        let y = p * (r * r) + r + 1.0;
        let scale = f32::from_bits(((n as i32 + 127).max(0) as u32) << 23);
        *o = if v < -87.3 { 0.0 } else { y * scale };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four rows at a time and the tail rows give each row's dot product (checked against f64),
    /// and `axpys` equals `y += a · x` row after row, bit for bit, over a strided layout.
    #[test]
    fn dots_and_axpys() {
        let (len, stride, off, n) = (19 + 32, 70, 5, 7);
        let m: Vec<f32> = (0..n * stride)
            .map(|i| (i % 13) as f32 * 0.37 - 2.0)
            .collect();
        let rows = Rows {
            m: &m,
            stride,
            off,
            len,
        };
        let q: Vec<f32> = (0..len).map(|i| 1.0 - i as f32 * 0.05).collect();
        let mut out = vec![0f32; n];
        dots(&q, rows, &mut out);
        for (p, &o) in out.iter().enumerate() {
            let want: f64 = (0..len)
                .map(|i| f64::from(q[i]) * f64::from(m[p * stride + off + i]))
                .sum();
            assert!((f64::from(o) - want).abs() < 1e-4, "row {p}: {o} vs {want}");
        }
        // The portable code (what `LLQ_KERNELS=scalar` runs) gives the same bits.
        let mut portable = vec![0f32; n];
        dots_lanes(&q, rows, &mut portable);
        assert_eq!(
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            portable.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let w: Vec<f32> = (0..n).map(|p| 0.1 + p as f32 * 0.3).collect();
        let mut y: Vec<f32> = (0..len).map(|i| i as f32 * 0.01).collect();
        let mut want = y.clone();
        for (p, &a) in w.iter().enumerate() {
            for (s, x) in want.iter_mut().zip(&m[p * stride + off..][..len]) {
                *s += a * x;
            }
        }
        axpys(&w, rows, &mut y);
        assert_eq!(y, want);
    }

    /// The polynomial exponential against libm over softmax's domain (x ≤ 0) and a little
    /// above, and the portable softmax against the AVX2 one, bit for bit.
    #[test]
    fn exp_lanes_is_within_two_ulp_of_libm() {
        let mut worst = 0u32;
        let mut v = -87.0f32;
        while v < 10.0 {
            let got = exp_lanes([v; 8])[0];
            let want = v.exp();
            worst = worst.max(got.to_bits().abs_diff(want.to_bits()));
            v += 0.000_37;
        }
        assert!(worst <= 2, "{worst} ulp");
        assert_eq!(exp_lanes([-100.0; 8])[0], 0.0);
        assert_eq!(exp_lanes([0.0; 8])[0], 1.0);
        let scores: Vec<f32> = (0..37).map(|i| (i as f32 * 0.77).sin() * 9.0).collect();
        let (mut a, mut b) = (scores.clone(), scores);
        softmax(&mut a);
        softmax_lanes(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut x = vec![1000.0, 1001.0, 999.0];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[1] > x[0] && x[0] > x[2]);
    }
}
