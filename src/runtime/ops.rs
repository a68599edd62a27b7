//! Element-wise pieces of the forward pass: RMSNorm, RoPE, SwiGLU, softmax, and the f32 dot
//! and axpy of attention.

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

/// `a · b` in f32 with eight independent partial sums, which the compiler turns into SIMD
/// (a single running sum is a dependency chain it may not reorder). Same lanes and order with
/// or without AVX2, so the same result.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if wide_simd() {
        // SAFETY: `wide_simd` checked that the CPU has AVX2.
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes(a, b)
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += a · x`.
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if wide_simd() {
        // SAFETY: `wide_simd` checked that the CPU has AVX2.
        return unsafe { axpy_avx2(a, x, y) };
    }
    axpy_lanes(a, x, y)
}

#[inline(always)]
fn axpy_lanes(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

// The attention loops (`dot`, `axpy`) compiled again for AVX2: a binary built for baseline
// x86-64 would otherwise run them 4 lanes wide (SSE).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_avx2(a: f32, x: &[f32], y: &mut [f32]) {
    axpy_lanes(a, x, y)
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

/// Softmax in place, stable against large logits.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
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

    #[test]
    fn dot_and_axpy() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.25).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-4);
        let mut y = b.clone();
        axpy(2.0, &a, &mut y);
        assert_eq!(y[3], b[3] + 2.0 * a[3]);
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
