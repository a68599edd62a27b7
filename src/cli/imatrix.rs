//! `llq imatrix`: llama-imatrix's statistics over a text, written as a legacy .dat file.

use crate::error::{Error, Result};
use crate::eval::{imatrix, perplexity, text::chunked_tokens};
use crate::progress;
use crate::runtime::model::Model;
use crate::runtime::run_command;
use crate::tokenizer::Tokenizer;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ImatrixArgs {
    model: PathBuf,
    #[arg(short, long, value_name = "TEXT")]
    file: PathBuf,
    /// Output .dat file.
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Use at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Also collect output.weight.
    #[arg(long)]
    process_output: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: ImatrixArgs) -> Result<()> {
    run_command(|| {
        let m = Model::load(&a.model)?;
        let tok = Tokenizer::from_model(&m)?;
        let tokens = chunked_tokens(&tok, &a.file, a.ctx, "an importance matrix")?;
        let n_chunks = perplexity::chunk_count(tokens.len(), a.ctx, a.chunks);
        let bar = if a.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            progress::count_bar(n_chunks as u64, "chunks")
        };
        let r = imatrix::compute(
            &m,
            &tokens,
            a.ctx,
            n_chunks,
            tok.bos(),
            a.process_output,
            |_| bar.inc(1),
        );
        bar.finish_and_clear();
        let dataset = a.file.to_string_lossy();
        let bytes = r.to_legacy(&dataset).to_bytes();
        std::fs::write(&a.output, bytes).map_err(|e| Error::io(&a.output, "cannot write", e))?;
        eprintln!(
            "{}: {} matrices, {} chunks of {} tokens",
            a.output.display(),
            r.stats.len(),
            n_chunks,
            a.ctx
        );
        Ok(())
    })
}
