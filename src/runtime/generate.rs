//! Text generation: prefill a prompt in one batch, then decode token by token, streaming each
//! token's text as soon as it is chosen, until the model ends its turn. A [`Generator`] keeps
//! its KV cache between calls, so a conversation re-evaluates only what changed.

use super::forward::{KvCache, Logits, Session};
use super::sampler::{Sampler, SamplerConfig};
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;
use std::io::Write;
use std::time::Instant;

pub struct GenerateOptions {
    /// Tokens to generate at most per call (fewer when the model ends its turn first).
    pub n_predict: usize,
    /// Context size: prompt + generated tokens must fit.
    pub n_ctx: usize,
    pub sampler: SamplerConfig,
}

/// Timings of one call.
pub struct GenerateStats {
    /// Prompt tokens evaluated (those not already in the cache).
    pub prompt_tokens: usize,
    pub prompt_seconds: f64,
    pub generated_tokens: usize,
    pub generate_seconds: f64,
}

/// A model generating text, with the tokens its cache holds.
pub struct Generator<'s, 'm> {
    session: &'s Session<'m>,
    tokenizer: &'s Tokenizer,
    n_predict: usize,
    cache: KvCache,
    sampler: Sampler,
    /// The tokens whose keys and values the cache holds, in order.
    cached: Vec<u32>,
}

impl<'s, 'm> Generator<'s, 'm> {
    pub fn new(session: &'s Session<'m>, tokenizer: &'s Tokenizer, opts: &GenerateOptions) -> Self {
        Generator {
            session,
            tokenizer,
            n_predict: opts.n_predict,
            cache: KvCache::new(session.model, opts.n_ctx),
            sampler: Sampler::new(opts.sampler.clone()),
            cached: Vec::new(),
        }
    }

    /// Continue after `prompt` (the whole text so far, as tokens): the part of it the cache
    /// already holds is kept, the rest evaluated; then sample until end of generation (end of
    /// text, turn or message) or `n_predict` tokens, writing each token's text to `out`.
    /// Returns the generated tokens (without the ending one) and the timings.
    pub fn respond(
        &mut self,
        prompt: &[u32],
        out: &mut impl Write,
    ) -> Result<(Vec<u32>, GenerateStats)> {
        let n_ctx = self.cache.capacity();
        if prompt.is_empty() {
            return Err(Error::Usage("the prompt is empty".into()));
        }
        if prompt.len() > n_ctx {
            return Err(Error::Usage(format!(
                "the prompt has {} tokens but the context holds {n_ctx} (raise --ctx)",
                prompt.len(),
            )));
        }
        // At least one token is evaluated, for the logits that choose the next one.
        let shared = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len() - 1);
        self.cache.truncate(shared);
        self.cached.truncate(shared);
        let write_err = |e: std::io::Error| Error::Usage(format!("cannot write output: {e}"));
        let started = Instant::now();
        let mut logits = self
            .session
            .forward(&prompt[shared..], &mut self.cache, Logits::Last);
        self.cached.extend_from_slice(&prompt[shared..]);
        let prompt_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let room = n_ctx - prompt.len();
        let mut generated = Vec::new();
        while generated.len() < self.n_predict.min(room) {
            let token = self.sampler.sample(&logits);
            if self.tokenizer.is_eog(token) {
                break;
            }
            generated.push(token);
            out.write_all(&self.tokenizer.piece_bytes(token))
                .and_then(|_| out.flush())
                .map_err(write_err)?;
            if generated.len() < self.n_predict.min(room) {
                logits = self
                    .session
                    .forward(&[token], &mut self.cache, Logits::Last);
                self.cached.push(token);
            }
        }
        let stats = GenerateStats {
            prompt_tokens: prompt.len() - shared,
            prompt_seconds,
            generated_tokens: generated.len(),
            generate_seconds: started.elapsed().as_secs_f64(),
        };
        Ok((generated, stats))
    }
}
