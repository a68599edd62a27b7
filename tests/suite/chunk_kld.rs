//! KL divergence per chunk of held-out text, as `llq compare` computes it, for tests that
//! compare rounding methods by paired differences over chunks (the chunks are the samples).

use crate::common::corpus_split;
use llq::{KvCache, Logits, Model, Session, Tokenizer};

/// Tokens per chunk.
pub const N_CTX: usize = 512;

/// The training text cut at its middle: (first half, second half).
pub fn training_halves() -> Option<(String, String)> {
    let (training, _) = corpus_split()?;
    let chars: Vec<char> = training.chars().collect();
    let half = chars.len() / 2;
    let cut = half + chars[half..].iter().position(|&c| c == '\n').unwrap() + 1;
    Some((chars[..cut].iter().collect(), chars[cut..].iter().collect()))
}

/// log-softmax of one row of logits, in f64.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    let log_sum = sum.ln();
    row.iter().map(|&x| f64::from(x) - max - log_sum).collect()
}

/// Mean KLD(reference ‖ model) of each chunk, for each model, as `llq compare` defines it
/// (llama.cpp's --kl-divergence): the text is tokenized once with BOS, each chunk of N_CTX
/// tokens starts with BOS from an empty cache, and its second half is scored.
pub fn chunk_klds(reference: &Model, models: &[Model], text: &str, chunks: usize) -> Vec<Vec<f64>> {
    let tok = Tokenizer::from_gguf(&reference.file).unwrap();
    let ids = tok.tokenize(text, true);
    assert!(ids.len() >= chunks * N_CTX, "{} tokens", ids.len());
    let (first, n_vocab) = (N_CTX / 2, reference.hp.n_vocab);
    let scored = N_CTX - 1 - first;
    let mut out = vec![Vec::with_capacity(chunks); models.len()];
    for c in 0..chunks {
        let mut batch = ids[c * N_CTX..(c + 1) * N_CTX].to_vec();
        batch[0] = tok.bos();
        let forward = |model: &Model| {
            let mut cache = KvCache::new(model, N_CTX);
            Session::new(model).forward(&batch, &mut cache, Logits::From(first))
        };
        let want: Vec<Vec<f64>> = forward(reference)
            .chunks_exact(n_vocab)
            .take(scored)
            .map(log_softmax)
            .collect();
        for (model, klds) in models.iter().zip(&mut out) {
            let got = forward(model);
            let sum: f64 = got
                .chunks_exact(n_vocab)
                .zip(&want)
                .map(|(row, p)| {
                    let q = log_softmax(row);
                    p.iter()
                        .zip(&q)
                        .map(|(a, b)| a.exp() * (a - b))
                        .sum::<f64>()
                })
                .sum();
            klds.push(sum / scored as f64);
        }
    }
    out
}

pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean and standard error of the per-chunk differences a − b.
pub fn paired_difference(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let m = mean(&d);
    let var = d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (d.len() - 1) as f64;
    (m, (var / d.len() as f64).sqrt())
}
