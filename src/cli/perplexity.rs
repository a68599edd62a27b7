//! `llq perplexity`: llama.cpp's method over a text file.

use crate::error::Result;
use crate::eval::perplexity;
use crate::eval::text::chunked_tokens;
use crate::progress;
use crate::runtime::forward::Session;
use crate::runtime::model::Model;
use crate::runtime::run_command;
use crate::tokenizer::Tokenizer;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PerplexityArgs {
    model: PathBuf,
    #[arg(short, long, value_name = "TEXT")]
    file: PathBuf,
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Evaluate at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Print JSON instead of `PPL = x +/- e`.
    #[arg(long)]
    json: bool,
}

pub fn run(a: PerplexityArgs) -> Result<()> {
    run_command(|| {
        let m = Model::load(&a.model)?;
        let tok = Tokenizer::from_model(&m)?;
        let tokens = chunked_tokens(&tok, &a.file, a.ctx, "perplexity")?;
        let n_chunks = perplexity::chunk_count(tokens.len(), a.ctx, a.chunks);
        let session = Session::new(&m);
        let bar = progress::count_bar(n_chunks as u64, "chunks");
        let r = perplexity::perplexity(&session, &tokens, a.ctx, n_chunks, tok.bos(), |_, ppl| {
            bar.set_message(format!("PPL {ppl:.4}"));
            bar.inc(1);
        });
        bar.finish_and_clear();
        if a.json {
            let j = json!({
                "ppl": r.ppl, "ppl_err": r.ppl_err, "n_ctx": r.n_ctx, "chunks": r.n_chunks,
                "tokens": tokens.len(), "scored": r.n_scored, "chunk_nll": r.chunk_nll,
            });
            println!("{j}");
        } else {
            println!("PPL = {:.4} +/- {:.5}", r.ppl, r.ppl_err);
        }
        Ok(())
    })
}
