//! A checkpoint folder's vocabulary: `tokenizer.model` (SentencePiece, or tiktoken for
//! Llama 3, told apart by content) or a Hugging Face `tokenizer.json`, checked against the
//! model's embedding size, with its special tokens and chat templates (see [`super::specials`]).

use super::bpe_vocab::BpeVocab;
use super::specials::{self, looks_special, Specials};
use super::{Tokens, Vocabulary};
use crate::error::{Error, Result};
use llq_formats::params::Hyperparams;
use llq_formats::sentencepiece::SpmModel;
use llq_formats::tokenizer_config::{self as tc, DeclaredToken, NamedTemplate, TokenizerConfig};
use llq_formats::tokenizer_json::{self as tj, TokenizerJson};
use llq_formats::{sentencepiece, tiktoken};
use llq_types::TokenType;
use std::path::{Path, PathBuf};

/// The vocabulary of a Meta folder: `tokenizer.model` only (Meta ships no token
/// configuration; a chat template comes from the user).
pub fn load_meta(dir: &Path, hp: &Hyperparams) -> Result<Vocabulary> {
    let path = dir.join("tokenizer.model");
    if !path.exists() {
        return Err(Error::file(
            dir,
            "no tokenizer.model (SentencePiece or tiktoken) in the model folder",
        ));
    }
    Ok(match read_tokenizer_model(&path, hp)? {
        Tokens::SentencePiece(spm) => Vocabulary {
            specials: Specials::of_sentencepiece(&spm),
            tokens: Tokens::SentencePiece(spm),
        },
        Tokens::Bpe(bpe) => Vocabulary {
            specials: Specials::of_llama3(&bpe.tokens),
            tokens: Tokens::Bpe(bpe),
        },
    })
}

/// The vocabulary of a Hugging Face folder: `tokenizer.model` if there is one (SentencePiece;
/// a tiktoken file is Meta's and gets Meta's special tokens), else `tokenizer.json`; special
/// tokens, flags and chat templates from `tokenizer_config.json`, `config.json`,
/// `tokenizer.json` and the template files, as llama.cpp's converter reads them.
pub fn load_hugging_face(dir: &Path, hp: &Hyperparams) -> Result<Vocabulary> {
    let files = HfFiles::read(dir)?;
    let model_path = dir.join("tokenizer.model");
    let mut tokens = if model_path.exists() {
        read_tokenizer_model(&model_path, hp)?
    } else {
        let (path, tj) = files.tokenizer_json.as_ref().ok_or_else(|| {
            Error::file(
                dir,
                "no tokenizer.model (SentencePiece or tiktoken) or tokenizer.json in the model \
                 folder",
            )
        })?;
        Tokens::Bpe(
            BpeVocab::from_tokenizer_json(tj, hp.n_vocab).map_err(|m| Error::file(path, m))?,
        )
    };
    let fallback = match tokens {
        Tokens::SentencePiece(ref mut spm) => {
            declare_tokens(spm, &files.config.added_tokens);
            Specials::of_sentencepiece(spm)
        }
        // A tiktoken tokenizer.model is Meta's, with Meta's special tokens whatever
        // config.json says; only the chat templates come from the folder.
        Tokens::Bpe(ref bpe) if model_path.exists() => {
            let specials = Specials {
                chat_templates: files.templates.clone(),
                ..Specials::of_llama3(&bpe.tokens)
            };
            return Ok(Vocabulary { tokens, specials });
        }
        Tokens::Bpe(_) => Specials::default(),
    };
    let texts = token_texts(&tokens);
    let added = files
        .tokenizer_json
        .as_ref()
        .map(|(_, tj)| &tj.added_tokens);
    // gguf-py resolves a named token among tokenizer.json's added tokens; a SentencePiece
    // folder without tokenizer.json resolves it among its pieces instead.
    let lookup = |name: &str| match added {
        Some(added) => added.iter().find(|t| t.content == name).map(|t| t.id),
        None => texts.iter().position(|t| *t == name).map(|i| i as u32),
    };
    let is_bpe = matches!(tokens, Tokens::Bpe(_));
    let specials = Specials::of_hugging_face(
        &texts,
        &files.config,
        &files.config_ids,
        lookup,
        files
            .tokenizer_json
            .as_ref()
            .and_then(|(_, tj)| tj.template_ends.as_ref()),
        files.templates.clone(),
        &fallback,
    );
    specials
        .check_ids(texts.len())
        .map_err(|m| Error::file(dir, m))?;
    if is_bpe && (specials.bos.is_none() || specials.eos.is_none()) {
        return Err(Error::file(
            dir,
            "no BOS or EOS token: tokenizer_config.json names none that tokenizer.json's added \
             tokens hold, and config.json has no bos_token_id / eos_token_id",
        ));
    }
    Ok(Vocabulary { tokens, specials })
}

/// Every token's text, in id order.
fn token_texts(tokens: &Tokens) -> Vec<&str> {
    match tokens {
        Tokens::SentencePiece(spm) => spm.pieces.iter().map(|p| p.piece.as_str()).collect(),
        Tokens::Bpe(bpe) => bpe.tokens.iter().map(String::as_str).collect(),
    }
}

/// A `tokenizer.model`: SentencePiece, or tiktoken (Llama 3), told apart by content.
fn read_tokenizer_model(path: &Path, hp: &Hyperparams) -> Result<Tokens> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
    if tiktoken::is_tiktoken(&bytes) {
        let ranks = tiktoken::parse(&bytes).map_err(|m| Error::file(path, m))?;
        let vocab =
            BpeVocab::from_tiktoken(&ranks, hp.n_vocab).map_err(|m| Error::file(path, m))?;
        return Ok(Tokens::Bpe(vocab));
    }
    let spm = sentencepiece::parse(&bytes).map_err(|m| Error::file(path, m))?;
    if spm.pieces.len() != hp.n_vocab {
        return Err(Error::file(
            path,
            format!(
                "tokenizer has {} pieces but the embedding has {} rows",
                spm.pieces.len(),
                hp.n_vocab
            ),
        ));
    }
    Ok(Tokens::SentencePiece(spm))
}

/// The tokens tokenizer_config.json's `added_tokens_decoder` declares, applied to a
/// SentencePiece vocabulary as llama.cpp's converter applies them: the declared text replaces
/// the piece, with score −1000, typed control if special (or special-looking), else
/// user-defined (with `▁` read as a space). Ids outside the vocabulary are ignored, as there.
fn declare_tokens(spm: &mut SpmModel, declared: &[DeclaredToken]) {
    for t in declared {
        let Some(piece) = spm.pieces.get_mut(t.id as usize) else {
            continue;
        };
        let control = t.special || looks_special(&t.content);
        piece.kind = if control {
            TokenType::Control
        } else {
            TokenType::UserDefined
        };
        piece.piece = if control {
            t.content.clone()
        } else {
            t.content.replace('\u{2581}', " ")
        };
        piece.score = -1000.0;
    }
}

/// The token configuration files of a Hugging Face folder, each optional.
struct HfFiles {
    config: TokenizerConfig,
    config_ids: tc::ConfigTokenIds,
    tokenizer_json: Option<(PathBuf, TokenizerJson)>,
    templates: Vec<NamedTemplate>,
}

impl HfFiles {
    fn read(dir: &Path) -> Result<HfFiles> {
        let read = |name: &str| -> Result<Option<(PathBuf, Vec<u8>)>> {
            let path = dir.join(name);
            if !path.exists() {
                return Ok(None);
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
            Ok(Some((path, bytes)))
        };
        let parsed = |name: &str| -> Result<Option<TokenizerConfig>> {
            read(name)?
                .map(|(path, bytes)| tc::parse(&bytes).map_err(|m| Error::file(&path, m)))
                .transpose()
        };
        let config = parsed("tokenizer_config.json")?;
        let config_ids = match read("config.json")? {
            Some((path, bytes)) => {
                tc::config_token_ids(&bytes).map_err(|m| Error::file(&path, m))?
            }
            None => tc::ConfigTokenIds::default(),
        };
        let tokenizer_json = match read("tokenizer.json")? {
            Some((path, bytes)) => {
                let parsed = tj::parse(&bytes).map_err(|m| Error::file(&path, m))?;
                Some((path, parsed))
            }
            None => None,
        };
        // As llama.cpp's converter: template files count only beside a tokenizer_config.json.
        let templates = match &config {
            None => Vec::new(),
            Some(config) => {
                let text = |name: &str| -> Result<Option<String>> {
                    read(name)?
                        .map(|(path, bytes)| utf8(&path, bytes))
                        .transpose()
                };
                let additional = read_additional_templates(&dir.join("additional_chat_templates"))?;
                let json = parsed("chat_template.json")?
                    .map(|c| c.chat_templates)
                    .unwrap_or_default();
                specials::chat_templates(config, text("chat_template.jinja")?, additional, json)
            }
        };
        Ok(HfFiles {
            config: config.unwrap_or_default(),
            config_ids,
            tokenizer_json,
            templates,
        })
    }
}

/// `additional_chat_templates/NAME.jinja` files, named by their stems, in name order.
fn read_additional_templates(dir: &Path) -> Result<Vec<NamedTemplate>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "cannot list", e))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, "cannot list", e))?.path();
        if path.extension().and_then(|x| x.to_str()) != Some("jinja") {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
        out.push(NamedTemplate {
            name,
            template: utf8(&path, bytes)?,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A chat template's text: UTF-8 and not empty.
pub fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String> {
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::file(
            path,
            format!(
                "a chat template must be UTF-8 text (invalid byte at {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Error::file(path, "the chat template is empty"));
    }
    Ok(text)
}
