//! Element-wise pieces of the forward pass: RMSNorm, RoPE, SwiGLU, softmax, and the f32 dot
//! products and weighted sums of attention.

/// `x / sqrt(mean(x²) + eps) * weight`, in place; the mean is accumulated in f64 as ggml does.
pub fn rms_norm(x: &mut [f32], weight: &[f32], eps: f32) {
    let sum: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let scale = 1.0 / ((sum / x.len() as f64) as f32 + eps).sqrt();
    for (v, w) in x.iter_mut().zip(weight) {
        *v = *v * scale * w;
    }
}

/// Per-pair rotation angles for one position: the cos and sin of `pos · θᵢ`, with
/// `θᵢ = base^(−2i/d) / freq_factor[i]` (GGUF's interleaved-pair RoPE).
pub struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    pub fn new(head_dim: usize, base: f32, freq_factors: Option<&[f32]>) -> Rope {
        let inv_freq = (0..head_dim / 2)
            .map(|i| {
                let f = 1.0 / base.powf(2.0 * i as f32 / head_dim as f32);
                f / freq_factors.map_or(1.0, |ff| ff[i])
            })
            .collect();
        Rope { inv_freq }
    }

    /// Rotate each head of `x` (heads of `head_dim`, adjacent pairs) to position `pos`.
    pub fn apply(&self, x: &mut [f32], head_dim: usize, pos: usize) {
        for head in x.chunks_exact_mut(head_dim) {
            for (pair, &f) in head.chunks_exact_mut(2).zip(&self.inv_freq) {
                let (sin, cos) = (pos as f32 * f).sin_cos();
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * cos - b * sin;
                pair[1] = a * sin + b * cos;
            }
        }
    }
}

/// `silu(gate) · up`, into `gate`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

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
    fn row(&self, p: usize) -> &'a [f32] {
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
        return unsafe { dots_avx2(q, rows, out) };
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
        return unsafe { axpys_avx2(w, rows, y) };
    }
    axpys_lanes(w, rows, y)
}

#[inline(always)]
fn axpys_lanes(w: &[f32], rows: Rows, y: &mut [f32]) {
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

// The attention loops compiled again for AVX2: a binary built for baseline x86-64 would
// otherwise run them 4 lanes wide (SSE).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dots_avx2(q: &[f32], rows: Rows, out: &mut [f32]) {
    assert_eq!(q.len(), rows.len, "query and key widths");
    let done = out.len() / 4 * 4;
    let mut groups = out.chunks_exact_mut(4);
    for (g, o) in (&mut groups).enumerate() {
        let p = 4 * g;
        let r = [
            rows.row(p),
            rows.row(p + 1),
            rows.row(p + 2),
            rows.row(p + 3),
        ];
        o.copy_from_slice(&dot_rows_avx2(q, r));
    }
    for (i, o) in groups.into_remainder().iter_mut().enumerate() {
        *o = dot_rows_avx2(q, [rows.row(done + i)])[0];
    }
}

/// [`dot_rows`] written with AVX2 intrinsics (the compiler did not vectorize the generic code
/// for several rows): the same lanes, products, sums and reduction order.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn dot_rows_avx2<const N: usize>(q: &[f32], r: [&[f32]; N]) -> [f32; N] {
    use std::arch::x86_64::*;
    let ld = |s: &[f32]| {
        let s = &s[..8];
        // SAFETY: `s` holds 8 readable f32; `loadu` has no alignment requirement.
        unsafe { _mm256_loadu_ps(s.as_ptr()) }
    };
    let chunks = q.len() / 8;
    let whole = 8 * chunks;
    let mut acc = [_mm256_setzero_ps(); N];
    for c in 0..chunks {
        let qv = ld(&q[8 * c..]);
        for (acc, r) in acc.iter_mut().zip(&r) {
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(qv, ld(&r[8 * c..])));
        }
    }
    let mut out = [0f32; N];
    for ((o, acc), r) in out.iter_mut().zip(acc).zip(r) {
        let tail: f32 = q[whole..].iter().zip(&r[whole..]).map(|(x, y)| x * y).sum();
        // Lanes i + (i + 4), then (0 + 2) and (1 + 3), then their sum: `dot_rows`' order.
        let s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        let s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
        *o = _mm_cvtss_f32(s1) + tail;
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpys_avx2(w: &[f32], rows: Rows, y: &mut [f32]) {
    axpys_lanes(w, rows, y)
}

/// AVX2 is there and the kernels are not forced to the scalar reference (`LLQ_KERNELS=scalar`
/// runs the portable code everywhere).
#[cfg(target_arch = "x86_64")]
fn wide_simd() -> bool {
    static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WIDE.get_or_init(|| {
        is_x86_feature_detected!("avx2") && llq_kernels::dot::active_isa() != "scalar"
    })
}

/// Softmax in place, stable against large logits; the sum in f64. The exponentials come from
/// [`exp_lanes`] eight at a time (a libm call per score was a fifth of `llq compare`'s time on
/// the small fixture), the same code with or without AVX2, so the same result.
pub fn softmax(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if wide_simd() {
        // SAFETY: `wide_simd` checked that the CPU has AVX2.
        return unsafe { softmax_avx2(x) };
    }
    softmax_lanes(x)
}

#[inline(always)]
fn softmax_lanes(x: &mut [f32]) {
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
    let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn softmax_avx2(x: &mut [f32]) {
    softmax_lanes(x)
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

    #[test]
    fn rope_at_position_zero_is_identity_and_preserves_norm() {
        let rope = Rope::new(8, 10000.0, None);
        let orig: Vec<f32> = (0..16).map(|i| i as f32 * 0.1 - 0.7).collect();
        let mut x = orig.clone();
        rope.apply(&mut x, 8, 0);
        assert_eq!(x, orig);
        rope.apply(&mut x, 8, 37);
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>();
        assert!((norm(&x) - norm(&orig)).abs() < 1e-4);
        // The first pair turns by exactly `pos` radians (θ₀ = 1).
        let (s, c) = 37f32.sin_cos();
        assert!((x[0] - (orig[0] * c - orig[1] * s)).abs() < 1e-6);
    }

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
    fn softmax_sums_to_one_and_norm_scales() {
        let mut x = vec![1000.0, 1001.0, 999.0];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[1] > x[0] && x[0] > x[2]);
        let mut v = vec![3.0, 4.0];
        rms_norm(&mut v, &[1.0, 2.0], 0.0);
        let r = (12.5f32).sqrt();
        assert!((v[0] - 3.0 / r).abs() < 1e-6 && (v[1] - 8.0 / r).abs() < 1e-6);
    }
}
