//! Choosing the next token: greedy at temperature 0, else temperature, top-k and top-p
//! (nucleus) sampling with a seeded generator, so a run is reproducible.

/// Sampling settings.
#[derive(Clone, Debug)]
pub struct SamplerConfig {
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub seed: u64,
}

pub struct Sampler {
    config: SamplerConfig,
    rng: SplitMix64,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Sampler {
        let rng = SplitMix64(config.seed);
        Sampler { config, rng }
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.config.temperature <= 0.0 {
            return argmax(logits);
        }
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l))
            .collect();
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.config.top_k > 0 {
            candidates.truncate(self.config.top_k);
        }
        let max = candidates[0].1;
        let mut probs: Vec<f32> = candidates
            .iter()
            .map(|c| ((c.1 - max) / self.config.temperature).exp())
            .collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        // Keep the smallest prefix whose mass reaches top_p.
        let mut mass = 0.0;
        let keep = probs
            .iter()
            .position(|p| {
                mass += p;
                mass >= self.config.top_p
            })
            .map_or(probs.len(), |i| i + 1);
        let mass: f32 = probs[..keep].iter().sum();
        let mut r = self.rng.next_f32() * mass;
        for (c, p) in candidates[..keep].iter().zip(&probs) {
            if r < *p {
                return c.0;
            }
            r -= p;
        }
        candidates[keep - 1].0
    }
}

/// The index of the largest value (the first on ties).
pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best as u32
}

/// A small, fast, seedable generator (Steele et al.'s SplitMix64).
/// A small seeded generator (SplitMix64): reproducible sampling and test data.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_seeded_sampling() {
        let logits = [0.1, 2.0, 1.9, -3.0];
        let cfg = |t: f32, k: usize, p: f32| SamplerConfig {
            temperature: t,
            top_k: k,
            top_p: p,
            seed: 7,
        };
        assert_eq!(Sampler::new(cfg(0.0, 0, 1.0)).sample(&logits), 1);
        assert_eq!(Sampler::new(cfg(1.0, 1, 1.0)).sample(&logits), 1);
        let draw = |seed_cfg| {
            let mut s = Sampler::new(seed_cfg);
            (0..50).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        let a = draw(cfg(1.0, 0, 1.0));
        assert_eq!(a, draw(cfg(1.0, 0, 1.0)), "same seed, same tokens");
        assert!(a.contains(&1) && a.contains(&2));
        // Token 1 holds 48.5 % of the mass: top-p 0.45 keeps it alone, top-p 0.9 two tokens.
        assert!(draw(cfg(1.0, 0, 0.45)).iter().all(|&t| t == 1));
        assert!(draw(cfg(1.0, 0, 0.9)).iter().all(|&t| t == 1 || t == 2));
    }
}
