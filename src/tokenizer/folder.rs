//! A checkpoint folder's vocabulary: `tokenizer.model` (SentencePiece, or tiktoken for
//! Llama 3, told apart by content) or a Hugging Face `tokenizer.json`, checked against the
//! model's embedding size.

use super::bpe_vocab::BpeVocab;
use super::Vocabulary;
use crate::error::{Error, Result};
use llq_formats::params::Hyperparams;
use llq_formats::{sentencepiece, tiktoken};
use std::path::{Path, PathBuf};

/// Load `tokenizer.model` from `dir` (SentencePiece, or tiktoken for Llama 3, told apart by
/// content), else a Hugging Face `tokenizer.json`; the error says what is missing or wrong.
pub fn load(dir: &Path, hp: &Hyperparams) -> Result<Vocabulary> {
    let path = dir.join("tokenizer.model");
    if !path.exists() {
        if dir.join("tokenizer.json").exists() {
            return load_tokenizer_json(dir, hp);
        }
        return Err(Error::file(
            dir,
            "no tokenizer.model (SentencePiece or tiktoken) or tokenizer.json in the model folder",
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
    if tiktoken::is_tiktoken(&bytes) {
        let ranks = tiktoken::parse(&bytes).map_err(|m| Error::file(&path, m))?;
        let vocab =
            BpeVocab::from_tiktoken(&ranks, hp.n_vocab).map_err(|m| Error::file(&path, m))?;
        return Ok(Vocabulary::Bpe(vocab));
    }
    let spm = sentencepiece::parse(&bytes).map_err(|m| Error::file(&path, m))?;
    if spm.pieces.len() != hp.n_vocab {
        return Err(Error::file(
            &path,
            format!(
                "tokenizer has {} pieces but the embedding has {} rows",
                spm.pieces.len(),
                hp.n_vocab
            ),
        ));
    }
    Ok(Vocabulary::SentencePiece(spm))
}

/// A Hugging Face `tokenizer.json` (Llama 3 byte-level BPE). BOS and EOS are config.json's
/// `bos_token_id` / `eos_token_id` when given, else tokenizer_config.json's `bos_token` /
/// `eos_token`; both files are optional.
fn load_tokenizer_json(dir: &Path, hp: &Hyperparams) -> Result<Vocabulary> {
    use llq_formats::tokenizer_json as tj;
    let read = |name: &str| -> Result<Option<(PathBuf, Vec<u8>)>> {
        let path = dir.join(name);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
        Ok(Some((path, bytes)))
    };
    let specials =
        |name: &str, parse: fn(&[u8]) -> std::result::Result<tj::SpecialTokens, String>| {
            read(name)?.map_or(Ok(tj::SpecialTokens::default()), |(path, bytes)| {
                parse(&bytes).map_err(|m| Error::file(&path, m))
            })
        };
    let config = specials("config.json", tj::config_special_tokens)?;
    let tok_config = specials("tokenizer_config.json", tj::tokenizer_config_special_tokens)?;
    let (path, bytes) = read("tokenizer.json")?
        .ok_or_else(|| Error::file(dir, "no tokenizer.json in the model folder"))?;
    let parsed = tj::parse(&bytes).map_err(|m| Error::file(&path, m))?;
    let vocab = BpeVocab::from_tokenizer_json(
        &parsed,
        config.bos.as_ref().or(tok_config.bos.as_ref()),
        config.eos.as_ref().or(tok_config.eos.as_ref()),
        hp.n_vocab,
    )
    .map_err(|m| Error::file(&path, m))?;
    Ok(Vocabulary::Bpe(vocab))
}
