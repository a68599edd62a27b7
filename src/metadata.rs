//! GGUF metadata for a LLaMA: the keys llama.cpp reads, with exactly the value types it checks.

use crate::bpe_vocab::BpeVocab;
use crate::plan::FileType;
use crate::source::{Source, SourceMeta};
use llq_formats::gguf::{Array, Value};
use llq_formats::params::Hyperparams;
use llq_formats::sentencepiece::SpmModel;

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
        .filter(|(k, _)| k != "general.file_type" && k != "general.quantization_version")
        .cloned()
        .collect();
    let at = out
        .iter()
        .position(|(k, _)| !k.starts_with("general."))
        .unwrap_or(out.len());
    out.insert(at, kv("general.quantization_version", Value::U32(2)));
    out.insert(at, kv("general.file_type", Value::U32(file_type.gguf_id())));
    out
}

fn header(name: &str, file_type: FileType) -> Vec<Kv> {
    vec![
        kv("general.architecture", Value::String("llama".into())),
        kv("general.name", Value::String(name.into())),
        kv("general.file_type", Value::U32(file_type.gguf_id())),
        kv("general.quantization_version", Value::U32(2)),
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
        kv("llama.vocab_size", u32_of(hp.n_vocab)),
        kv("llama.context_length", u32_of(hp.context_length)),
        kv("llama.embedding_length", u32_of(hp.n_embd)),
        kv("llama.block_count", u32_of(hp.n_layer)),
        kv("llama.feed_forward_length", u32_of(hp.n_ff)),
        kv("llama.attention.head_count", u32_of(hp.n_head)),
        kv("llama.attention.head_count_kv", u32_of(hp.n_head_kv)),
        kv("llama.rope.dimension_count", u32_of(hp.head_dim())),
        kv("llama.rope.freq_base", Value::F32(hp.rope_theta)),
        kv(
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(hp.norm_eps),
        ),
    ]
}

/// SentencePiece vocabulary as llama.cpp's "llama" tokenizer reads it. SentencePiece's piece
/// types (1 normal … 6 byte) are the same numbers as llama.cpp's token types.
pub fn tokenizer_keys(spm: &SpmModel) -> Vec<Kv> {
    let tokens = spm.pieces.iter().map(|p| p.piece.clone()).collect();
    let scores = spm.pieces.iter().map(|p| p.score).collect();
    let types = spm.pieces.iter().map(|p| p.kind as i32).collect();
    let mut out = vec![
        kv("tokenizer.ggml.model", Value::String("llama".into())),
        kv("tokenizer.ggml.pre", Value::String("default".into())),
        kv("tokenizer.ggml.tokens", Value::Array(Array::String(tokens))),
        kv("tokenizer.ggml.scores", Value::Array(Array::F32(scores))),
        kv("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
    ];
    // Ids of −1 mean "none" in SentencePiece; llama.cpp wants the key absent then.
    for (key, id) in [
        ("tokenizer.ggml.bos_token_id", spm.bos_id),
        ("tokenizer.ggml.eos_token_id", spm.eos_id),
        ("tokenizer.ggml.unknown_token_id", spm.unk_id),
        ("tokenizer.ggml.padding_token_id", spm.pad_id),
    ] {
        if let Ok(id) = u32::try_from(id) {
            out.push(kv(key, Value::U32(id)));
        }
    }
    out.push(kv("tokenizer.ggml.add_bos_token", Value::Bool(true)));
    out.push(kv("tokenizer.ggml.add_eos_token", Value::Bool(false)));
    out
}

/// A byte-level BPE vocabulary (Llama 3) as llama.cpp's "gpt2" tokenizer with the "llama-bpe"
/// pre-tokenizer reads it.
pub fn bpe_tokenizer_keys(v: &BpeVocab) -> Vec<Kv> {
    let mut out = vec![
        kv("tokenizer.ggml.model", Value::String("gpt2".into())),
        kv("tokenizer.ggml.pre", Value::String("llama-bpe".into())),
        kv(
            "tokenizer.ggml.tokens",
            Value::Array(Array::String(v.tokens.clone())),
        ),
        kv(
            "tokenizer.ggml.token_type",
            Value::Array(Array::I32(v.types.clone())),
        ),
        kv(
            "tokenizer.ggml.merges",
            Value::Array(Array::String(v.merges.clone())),
        ),
        kv("tokenizer.ggml.bos_token_id", Value::U32(v.bos)),
        kv("tokenizer.ggml.eos_token_id", Value::U32(v.eos)),
    ];
    if let Some(eot) = v.eot {
        out.push(kv("tokenizer.ggml.eot_token_id", Value::U32(eot)));
    }
    out.push(kv("tokenizer.ggml.add_bos_token", Value::Bool(true)));
    out.push(kv("tokenizer.ggml.add_eos_token", Value::Bool(false)));
    out
}
