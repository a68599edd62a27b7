//! A vocabulary as GGUF `tokenizer.ggml.*` keys, with exactly the value types llama.cpp checks.

use super::bpe_vocab::BpeVocab;
use super::Vocabulary;
use llq_formats::gguf::{Array, Value};
use llq_formats::sentencepiece::SpmModel;
use llq_types::keys;

type Kv = (String, Value);

fn kv(key: &str, value: Value) -> Kv {
    (key.to_string(), value)
}

/// The keys of `vocab`, in a fixed order (the output is deterministic).
pub fn keys(vocab: &Vocabulary) -> Vec<Kv> {
    match vocab {
        Vocabulary::SentencePiece(spm) => sentencepiece_keys(spm),
        Vocabulary::Bpe(bpe) => bpe_keys(bpe),
    }
}

/// SentencePiece vocabulary as llama.cpp's "llama" tokenizer reads it. SentencePiece's piece
/// types (1 normal … 6 byte) are the same numbers as llama.cpp's token types.
pub fn sentencepiece_keys(spm: &SpmModel) -> Vec<Kv> {
    let tokens = spm.pieces.iter().map(|p| p.piece.clone()).collect();
    let scores = spm.pieces.iter().map(|p| p.score).collect();
    let types = spm.pieces.iter().map(|p| p.kind.id()).collect();
    let mut out = vec![
        kv(keys::tokenizer::MODEL, Value::String("llama".into())),
        kv(keys::tokenizer::PRE, Value::String("default".into())),
        kv(keys::tokenizer::TOKENS, Value::Array(Array::String(tokens))),
        kv(keys::tokenizer::SCORES, Value::Array(Array::F32(scores))),
        kv(keys::tokenizer::TOKEN_TYPE, Value::Array(Array::I32(types))),
    ];
    // Ids of −1 mean "none" in SentencePiece; llama.cpp wants the key absent then.
    for (key, id) in [
        (keys::tokenizer::BOS_ID, spm.bos_id),
        (keys::tokenizer::EOS_ID, spm.eos_id),
        (keys::tokenizer::UNKNOWN_ID, spm.unk_id),
        (keys::tokenizer::PADDING_ID, spm.pad_id),
    ] {
        if let Ok(id) = u32::try_from(id) {
            out.push(kv(key, Value::U32(id)));
        }
    }
    out.push(kv(keys::tokenizer::ADD_BOS, Value::Bool(true)));
    out.push(kv(keys::tokenizer::ADD_EOS, Value::Bool(false)));
    out
}

/// A byte-level BPE vocabulary (Llama 3) as llama.cpp's "gpt2" tokenizer with the "llama-bpe"
/// pre-tokenizer reads it.
fn bpe_keys(v: &BpeVocab) -> Vec<Kv> {
    let mut out = vec![
        kv(keys::tokenizer::MODEL, Value::String("gpt2".into())),
        kv(keys::tokenizer::PRE, Value::String("llama-bpe".into())),
        kv(
            keys::tokenizer::TOKENS,
            Value::Array(Array::String(v.tokens.clone())),
        ),
        kv(
            keys::tokenizer::TOKEN_TYPE,
            Value::Array(Array::I32(v.types.iter().map(|t| t.id()).collect())),
        ),
        kv(
            keys::tokenizer::MERGES,
            Value::Array(Array::String(v.merges.clone())),
        ),
        kv(keys::tokenizer::BOS_ID, Value::U32(v.bos)),
        kv(keys::tokenizer::EOS_ID, Value::U32(v.eos)),
    ];
    if let Some(eot) = v.eot {
        out.push(kv(keys::tokenizer::EOT_ID, Value::U32(eot)));
    }
    out.push(kv(keys::tokenizer::ADD_BOS, Value::Bool(true)));
    out.push(kv(keys::tokenizer::ADD_EOS, Value::Bool(false)));
    out
}
