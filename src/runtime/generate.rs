//! Text generation: prefill the prompt in one batch, then decode token by token, streaming
//! each token's text as soon as it is chosen.

use super::forward::{KvCache, Logits, Session};
use super::sampler::{Sampler, SamplerConfig};
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;
use std::io::Write;
use std::time::Instant;

pub struct GenerateOptions {
    pub prompt: String,
    /// Tokens to generate at most (stops earlier at end of text).
    pub n_predict: usize,
    /// Context size: prompt + generated tokens must fit.
    pub n_ctx: usize,
    pub sampler: SamplerConfig,
}

/// Timings of one run.
pub struct GenerateStats {
    pub prompt_tokens: usize,
    pub prompt_seconds: f64,
    pub generated_tokens: usize,
    pub generate_seconds: f64,
}

pub fn generate(
    session: &Session,
    tokenizer: &Tokenizer,
    opts: &GenerateOptions,
    out: &mut impl Write,
) -> Result<GenerateStats> {
    let prompt = tokenizer.encode(&opts.prompt, true);
    if prompt.len() > opts.n_ctx {
        return Err(Error::Usage(format!(
            "the prompt has {} tokens but the context holds {} (raise --ctx)",
            prompt.len(),
            opts.n_ctx
        )));
    }
    let n_predict = opts.n_predict.min(opts.n_ctx - prompt.len());
    let mut cache = KvCache::new(session.model, opts.n_ctx);
    let mut sampler = Sampler::new(opts.sampler.clone());
    let write_err = |e: std::io::Error| Error::Usage(format!("cannot write output: {e}"));

    out.write_all(opts.prompt.as_bytes()).map_err(write_err)?;
    out.flush().map_err(write_err)?;
    let started = Instant::now();
    let mut logits = session.forward(&prompt, &mut cache, Logits::Last);
    let prompt_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut generated = 0;
    while generated < n_predict {
        let token = sampler.sample(&logits);
        if token == tokenizer.eos() {
            break;
        }
        generated += 1;
        out.write_all(&tokenizer.piece_bytes(token))
            .map_err(write_err)?;
        out.flush().map_err(write_err)?;
        if generated < n_predict {
            logits = session.forward(&[token], &mut cache, Logits::Last);
        }
    }
    Ok(GenerateStats {
        prompt_tokens: prompt.len(),
        prompt_seconds,
        generated_tokens: generated,
        generate_seconds: started.elapsed().as_secs_f64(),
    })
}
