//! Evaluation text: read as UTF-8 (a file, or standard input for "-") and tokenized once with
//! BOS, as llama.cpp's tools do, with enough tokens for the chunks asked for.

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;
use std::io::Read;
use std::path::Path;

/// A UTF-8 text file, or standard input for "-".
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = if path == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| Error::io(path, "cannot read standard input", e))?;
        b
    } else {
        std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?
    };
    String::from_utf8(bytes).map_err(|e| {
        Error::file(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// The tokens of the text at `path` (BOS first), which must hold at least two chunks of
/// `n_ctx` tokens; `purpose` names the computation in the error ("perplexity", …).
pub fn chunked_tokens(
    tok: &Tokenizer,
    path: &Path,
    n_ctx: usize,
    purpose: &str,
) -> Result<Vec<u32>> {
    if n_ctx < 4 {
        return Err(Error::Usage(format!(
            "--ctx {n_ctx} is too small (at least 4)"
        )));
    }
    let tokens = tok.tokenize(&read_text(path)?, true);
    if tokens.len() < 2 * n_ctx {
        return Err(Error::file(
            path,
            format!(
                "has {} tokens; {purpose} with a context of {n_ctx} needs at least {} (two chunks)",
                tokens.len(),
                2 * n_ctx
            ),
        ));
    }
    Ok(tokens)
}
