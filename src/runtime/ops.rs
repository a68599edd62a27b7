//! Element-wise pieces of the forward pass: RMSNorm, RoPE, SwiGLU. Attention's f32 dot products,
//! softmax and weighted sums are in `llq_kernels::attention`.

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
    fn rms_norm_scales_to_unit_rms() {
        let mut v = vec![3.0, 4.0];
        rms_norm(&mut v, &[1.0, 2.0], 0.0);
        let r = (12.5f32).sqrt();
        assert!((v[0] - 3.0 / r).abs() < 1e-6 && (v[1] - 8.0 / r).abs() < 1e-6);
    }
}
