//! Perplexity exactly as llama.cpp's `llama-perplexity` computes it: the text is tokenized once
//! with BOS, cut into chunks of `n_ctx` tokens; each chunk starts from an empty cache with its
//! first token replaced by BOS, and only its second half is scored.

use crate::runtime::forward::{KvCache, Logits, Session};

#[derive(Clone, Debug)]
pub struct PerplexityResult {
    pub ppl: f64,
    /// llama.cpp's uncertainty: the standard error of the mean NLL, times PPL.
    pub ppl_err: f64,
    pub n_chunks: usize,
    pub n_ctx: usize,
    /// Tokens scored in all.
    pub n_scored: usize,
    /// Mean negative log-likelihood of each chunk.
    pub chunk_nll: Vec<f64>,
}

/// How many whole chunks the tokens hold.
pub fn chunk_count(n_tokens: usize, n_ctx: usize, max_chunks: Option<usize>) -> usize {
    let n = n_tokens / n_ctx;
    max_chunks.map_or(n, |m| m.min(n))
}

/// Negative log-likelihoods of the scored positions of one chunk (`tokens.len() == n_ctx`).
pub fn chunk_nlls(session: &Session, cache: &mut KvCache, tokens: &[u32], bos: u32) -> Vec<f64> {
    let n_ctx = tokens.len();
    let first = n_ctx / 2;
    let mut batch = tokens.to_vec();
    batch[0] = bos;
    cache.clear();
    let logits = session.forward(&batch, cache, Logits::From(first));
    let n_vocab = session.model.hp.n_vocab;
    (first..n_ctx - 1)
        .map(|j| {
            nll(
                &logits[(j - first) * n_vocab..(j - first + 1) * n_vocab],
                tokens[j + 1],
            )
        })
        .collect()
}

/// −log softmax(logits)[target], with the sum in f64.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    -(f64::from(logits[target as usize] - max) - sum.ln())
}

/// Run every chunk; `on_chunk(i, running_ppl)` reports progress.
pub fn perplexity(
    session: &Session,
    tokens: &[u32],
    n_ctx: usize,
    n_chunks: usize,
    bos: u32,
    mut on_chunk: impl FnMut(usize, f64),
) -> PerplexityResult {
    let mut cache = KvCache::new(session.model, n_ctx);
    let (mut sum, mut sum2, mut count) = (0f64, 0f64, 0usize);
    let mut chunk_nll = Vec::with_capacity(n_chunks);
    for c in 0..n_chunks {
        let nlls = chunk_nlls(
            session,
            &mut cache,
            &tokens[c * n_ctx..(c + 1) * n_ctx],
            bos,
        );
        sum += nlls.iter().sum::<f64>();
        sum2 += nlls.iter().map(|x| x * x).sum::<f64>();
        count += nlls.len();
        chunk_nll.push(nlls.iter().sum::<f64>() / nlls.len() as f64);
        on_chunk(c, (sum / count as f64).exp());
    }
    let mean = sum / count as f64;
    let var = sum2 / count as f64 - mean * mean;
    let ppl = mean.exp();
    let ppl_err = if var > 0.0 && count > 1 {
        (var / (count - 1) as f64).sqrt() * ppl
    } else {
        0.0
    };
    PerplexityResult {
        ppl,
        ppl_err,
        n_chunks,
        n_ctx,
        n_scored: count,
        chunk_nll,
    }
}
