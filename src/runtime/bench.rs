//! `llq bench`: prompt processing and generation speed in the shape of llama-bench (pp N, tg N),
//! and the memory roofline for generation: every weight is read once per generated token, so
//! tokens/s can be at most bandwidth ÷ weight bytes.

use super::forward::{KvCache, Logits, Session};
use rayon::prelude::*;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct BenchResult {
    pub pp_tokens: usize,
    pub pp_tok_s: f64,
    pub tg_tokens: usize,
    pub tg_tok_s: f64,
    /// Weight bytes read per generated token.
    pub bytes_per_token: u64,
    /// Measured read bandwidth, bytes/s.
    pub read_bandwidth: f64,
}

impl BenchResult {
    /// The generation speed the bandwidth allows.
    pub fn roofline_tok_s(&self) -> f64 {
        self.read_bandwidth / self.bytes_per_token as f64
    }
}

/// Weight bytes a single-token forward reads: every matrix but the embedding (one row).
pub fn bytes_per_token(session: &Session) -> u64 {
    let m = session.model;
    let layers: usize = m
        .layers
        .iter()
        .map(|l| {
            [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                .iter()
                .map(|w| m.weights(w).data.len())
                .sum::<usize>()
        })
        .sum();
    (layers + m.weights(&m.output).data.len()) as u64
}

/// Best-of-`reps` timings of a `pp`-token prompt and `tg` generated tokens.
pub fn run(session: &Session, pp: usize, tg: usize, reps: usize) -> BenchResult {
    let n_vocab = session.model.hp.n_vocab as u32;
    // Deterministic token ids spread over the vocabulary; their values do not change the cost.
    let tokens: Vec<u32> = (0..pp.max(1) as u32)
        .map(|i| (i * 7919 + 1) % n_vocab)
        .collect();
    let mut cache = KvCache::new(session.model, pp.max(tg) + 1);
    let (mut best_pp, mut best_tg) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..reps.max(1) {
        cache.clear();
        if pp > 0 {
            let t = Instant::now();
            session.forward(&tokens, &mut cache, Logits::Last);
            best_pp = best_pp.min(t.elapsed().as_secs_f64());
        }
        if tg > 0 {
            // Like llama-bench, generation starts from an empty cache (not after the prompt).
            cache.clear();
            let t = Instant::now();
            let mut token = tokens[0];
            for _ in 0..tg {
                let logits = session.forward(&[token], &mut cache, Logits::Last);
                token = super::sampler::argmax(&logits);
            }
            best_tg = best_tg.min(t.elapsed().as_secs_f64());
        }
    }
    BenchResult {
        pp_tokens: pp,
        pp_tok_s: pp as f64 / best_pp,
        tg_tokens: tg,
        tg_tok_s: tg as f64 / best_tg,
        bytes_per_token: bytes_per_token(session),
        read_bandwidth: read_bandwidth(),
    }
}

/// Memory read bandwidth with all threads: best of 3 parallel sums over 1 GiB.
pub fn read_bandwidth() -> f64 {
    let buf = vec![1u64; (1 << 30) / 8];
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let sum: u64 = buf
            .par_chunks(1 << 16)
            .map(|c| c.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
            .reduce(|| 0, u64::wrapping_add);
        std::hint::black_box(sum);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (buf.len() * 8) as f64 / best
}
