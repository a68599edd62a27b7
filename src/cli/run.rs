//! `llq run`: stream generated text to stdout, speeds to stderr.

use crate::error::Result;
use crate::runtime::forward::Session;
use crate::runtime::generate::{self, GenerateOptions};
use crate::runtime::model::Model;
use crate::runtime::run_command;
use crate::runtime::sampler::SamplerConfig;
use crate::tokenizer::Tokenizer;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RunArgs {
    model: PathBuf,
    #[arg(short, long)]
    prompt: String,
    /// Tokens to generate at most.
    #[arg(short = 'n', long, default_value_t = 128)]
    n_predict: usize,
    /// Temperature; 0 is greedy (deterministic).
    #[arg(long, default_value_t = 0.8)]
    temp: f32,
    /// Keep the K most likely tokens (0: all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Keep the most likely tokens up to this probability mass.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Context size (prompt + generated tokens).
    #[arg(long, default_value_t = 2048)]
    ctx: usize,
}

pub fn run(a: RunArgs) -> Result<()> {
    let opts = GenerateOptions {
        prompt: a.prompt,
        n_predict: a.n_predict,
        n_ctx: a.ctx,
        sampler: SamplerConfig {
            temperature: a.temp,
            top_k: a.top_k,
            top_p: a.top_p,
            seed: a.seed,
        },
    };
    run_command(|| {
        let m = Model::load(&a.model)?;
        let tok = Tokenizer::from_model(&m)?;
        if opts.n_ctx > m.hp.context_length {
            eprintln!(
                "note: --ctx {} exceeds the model's trained context of {}",
                opts.n_ctx, m.hp.context_length
            );
        }
        let session = Session::new(&m);
        let mut out = std::io::stdout().lock();
        let stats = generate::generate(&session, &tok, &opts, &mut out)?;
        let _ = writeln!(out);
        let rate = |n: usize, s: f64| n as f64 / s.max(1e-9);
        eprintln!(
            "prompt: {} tokens, {:.1} tokens/s; generation: {} tokens, {:.1} tokens/s",
            stats.prompt_tokens,
            rate(stats.prompt_tokens, stats.prompt_seconds),
            stats.generated_tokens,
            rate(stats.generated_tokens, stats.generate_seconds)
        );
        Ok(())
    })
}
