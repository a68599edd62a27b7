//! `--calibration`: text the reference model runs over, for what `--fit` measures and what
//! `--quant-mode gptq` compensates. Chunks as llama.cpp's perplexity cuts them: `n_ctx` tokens
//! each, the first replaced by BOS.

use crate::error::Result;
use crate::eval::text::chunked_tokens;
use crate::tokenizer::Tokenizer;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Calibration {
    pub text: PathBuf,
    /// At most this many chunks are used.
    pub chunks: usize,
    pub n_ctx: usize,
}

impl Calibration {
    /// The chunks of the text: at most `self.chunks`, at least two (a shorter text is an error
    /// naming the file).
    pub fn chunks(&self, tok: &Tokenizer) -> Result<Vec<Vec<u32>>> {
        let tokens = chunked_tokens(tok, &self.text, self.n_ctx, "calibration")?;
        Ok(tokens
            .chunks_exact(self.n_ctx)
            .take(self.chunks)
            .map(|c| {
                let mut chunk = c.to_vec();
                chunk[0] = tok.bos();
                chunk
            })
            .collect())
    }
}
