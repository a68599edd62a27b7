//! `llq run`: stream generated text to stdout, speeds to stderr. With `--chat` the prompt is
//! a user turn in the model's chat template (and without `-p` a conversation read from
//! standard input, one user turn per line).

use crate::error::{Error, Result};
use crate::runtime::forward::Session;
use crate::runtime::generate::{GenerateOptions, GenerateStats, Generator};
use crate::runtime::model::Model;
use crate::runtime::run_command;
use crate::runtime::sampler::SamplerConfig;
use crate::tokenizer::chat::{self, Message};
use crate::tokenizer::Tokenizer;
use clap::Args;
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RunArgs {
    model: PathBuf,
    /// The prompt (with --chat: the user's message; without -p, --chat reads a conversation
    /// from standard input).
    #[arg(short, long, required_unless_present = "chat")]
    prompt: Option<String>,
    /// Chat: apply the model's chat template (tokenizer.chat_template) to the prompt as a user
    /// turn, and stop at end of turn.
    #[arg(long, visible_alias = "cnv")]
    chat: bool,
    /// With --chat: a system message first.
    #[arg(long, requires = "chat")]
    system: Option<String>,
    /// Tokens to generate at most (per turn in a conversation).
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
        let mut generator = Generator::new(&session, &tok, &opts);
        let mut out = std::io::stdout().lock();
        if !a.chat {
            let prompt = a.prompt.as_deref().unwrap_or_default();
            out.write_all(prompt.as_bytes())
                .and_then(|_| out.flush())
                .map_err(stdout_err)?;
            let (_, stats) = generator.respond(&tok.encode(prompt, true), &mut out)?;
            let _ = writeln!(out);
            print_stats(&stats);
            return Ok(());
        }
        let mut conversation: Vec<Message> =
            a.system.iter().map(|s| Message::new("system", s)).collect();
        let mut turns: Box<dyn Iterator<Item = Result<String>>> = match &a.prompt {
            Some(p) => Box::new(std::iter::once(Ok(p.clone()))),
            None => Box::new(
                std::io::stdin()
                    .lock()
                    .lines()
                    .map(|l| l.map_err(|e| Error::io("<stdin>", "cannot read", e))),
            ),
        };
        loop {
            if a.prompt.is_none() {
                eprint!("> ");
            }
            let Some(turn) = turns.next() else { break };
            conversation.push(Message::new("user", &turn?));
            let prompt =
                chat::prompt_tokens(&tok, &conversation).map_err(|m| Error::file(&a.model, m))?;
            let (reply, stats) = generator.respond(&prompt, &mut out)?;
            let _ = writeln!(out);
            print_stats(&stats);
            conversation.push(Message::new("assistant", &tok.decode(&reply)));
        }
        Ok(())
    })
}

fn stdout_err(e: std::io::Error) -> Error {
    Error::Usage(format!("cannot write output: {e}"))
}

fn print_stats(stats: &GenerateStats) {
    let rate = |n: usize, s: f64| n as f64 / s.max(1e-9);
    eprintln!(
        "prompt: {} tokens, {:.1} tokens/s; generation: {} tokens, {:.1} tokens/s",
        stats.prompt_tokens,
        rate(stats.prompt_tokens, stats.prompt_seconds),
        stats.generated_tokens,
        rate(stats.generated_tokens, stats.generate_seconds)
    );
}
