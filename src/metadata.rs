//! GGUF metadata for a LLaMA: the keys llama.cpp reads, with exactly the value types it checks.

use crate::bpe_vocab::BpeVocab;
use crate::source::{Source, SourceMeta};
use llq_formats::gguf::{Array, Value};
use llq_formats::params::Hyperparams;
use llq_formats::sentencepiece::SpmModel;
use llq_types::keys;
use llq_types::FileType;

type Kv = (String, Value);

fn kv(key: &str, value: Value) -> Kv {
    (key.to_string(), value)
}

fn u32_of(n: usize) -> Value {
    Value::U32(u32::try_from(n).unwrap_or(u32::MAX))
}

/// All key/values of the output file, in a fixed order (the output is deterministic).
pub fn build(source: &Source, file_type: FileType) -> Vec<Kv> {
    match &source.meta {
        SourceMeta::Checkpoint(spm) => {
            from_checkpoint(&source.name, &source.hparams, spm, file_type)
        }
        SourceMeta::Bpe(vocab) => {
            let mut out = header(&source.name, file_type);
            out.extend(model_keys(&source.hparams));
            out.extend(bpe_tokenizer_keys(vocab));
            out
        }
        SourceMeta::Gguf(kvs) => carried_over(kvs, file_type),
    }
}

/// A GGUF's own key/values, with the file type updated.
fn carried_over(kvs: &[Kv], file_type: FileType) -> Vec<Kv> {
    let mut out: Vec<Kv> = kvs
        .iter()
        .filter(|(k, _)| k != keys::general::FILE_TYPE && k != keys::general::QUANTIZATION_VERSION)
        .cloned()
        .collect();
    let at = out
        .iter()
        .position(|(k, _)| !k.starts_with("general."))
        .unwrap_or(out.len());
    out.insert(at, kv(keys::general::QUANTIZATION_VERSION, Value::U32(2)));
    out.insert(
        at,
        kv(keys::general::FILE_TYPE, Value::U32(file_type.gguf_id())),
    );
    out
}

fn header(name: &str, file_type: FileType) -> Vec<Kv> {
    vec![
        kv(keys::general::ARCHITECTURE, Value::String("llama".into())),
        kv(keys::general::NAME, Value::String(name.into())),
        kv(keys::general::FILE_TYPE, Value::U32(file_type.gguf_id())),
        kv(keys::general::QUANTIZATION_VERSION, Value::U32(2)),
    ]
}

fn from_checkpoint(name: &str, hp: &Hyperparams, spm: &SpmModel, file_type: FileType) -> Vec<Kv> {
    let mut out = header(name, file_type);
    out.extend(model_keys(hp));
    out.extend(tokenizer_keys(spm));
    out
}

fn model_keys(hp: &Hyperparams) -> Vec<Kv> {
    vec![
        kv(keys::llama::VOCAB_SIZE, u32_of(hp.n_vocab)),
        kv(keys::llama::CONTEXT_LENGTH, u32_of(hp.context_length)),
        kv(keys::llama::EMBEDDING_LENGTH, u32_of(hp.n_embd)),
        kv(keys::llama::BLOCK_COUNT, u32_of(hp.n_layer)),
        kv(keys::llama::FEED_FORWARD_LENGTH, u32_of(hp.n_ff)),
        kv(keys::llama::HEAD_COUNT, u32_of(hp.n_head)),
        kv(keys::llama::HEAD_COUNT_KV, u32_of(hp.n_head_kv)),
        kv(keys::llama::ROPE_DIMENSION_COUNT, u32_of(hp.head_dim())),
        kv(keys::llama::ROPE_FREQ_BASE, Value::F32(hp.rope_theta)),
        kv(keys::llama::RMS_EPSILON, Value::F32(hp.norm_eps)),
    ]
}

/// SentencePiece vocabulary as llama.cpp's "llama" tokenizer reads it. SentencePiece's piece
/// types (1 normal … 6 byte) are the same numbers as llama.cpp's token types.
pub fn tokenizer_keys(spm: &SpmModel) -> Vec<Kv> {
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
pub fn bpe_tokenizer_keys(v: &BpeVocab) -> Vec<Kv> {
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
