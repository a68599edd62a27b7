//! GGUF metadata for a LLaMA: the keys llama.cpp reads, with exactly the value types it checks
//! (the vocabulary's keys come from [`crate::tokenizer::gguf_keys`]).

use crate::checkpoint::{Source, SourceMetadata};
use crate::tokenizer::gguf_keys;
use llq_formats::gguf::Value;
use llq_formats::params::Hyperparams;
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
/// `chat_template` replaces the default chat template, whatever the source had.
pub fn build(source: &Source, file_type: FileType, chat_template: Option<&str>) -> Vec<Kv> {
    match &source.metadata {
        SourceMetadata::Build(vocab) => {
            let mut out = header(&source.name, file_type);
            out.extend(model_keys(&source.hparams));
            match chat_template {
                None => out.extend(gguf_keys::vocabulary_keys(vocab)),
                Some(t) => {
                    let mut vocab = vocab.clone();
                    vocab.specials.set_default_template(t.to_string());
                    out.extend(gguf_keys::vocabulary_keys(&vocab));
                }
            }
            out
        }
        SourceMetadata::CarryOver(kvs) => {
            let mut out = carried_over(kvs, file_type);
            if let Some(t) = chat_template {
                set_chat_template(&mut out, t);
            }
            out
        }
    }
}

/// Set `general.file_type` (a fitted mix is told apart only after the metadata is built).
pub fn set_file_type(kvs: &mut [Kv], file_type: FileType) {
    for (k, v) in kvs.iter_mut() {
        if k == keys::general::FILE_TYPE {
            *v = Value::U32(file_type.gguf_id());
        }
    }
}

/// Replace (or add, after the other tokenizer keys) the default chat template.
pub fn set_chat_template(kvs: &mut Vec<Kv>, template: &str) {
    let value = Value::String(template.to_string());
    match kvs
        .iter_mut()
        .find(|(k, _)| k == keys::tokenizer::CHAT_TEMPLATE)
    {
        Some(kv) => kv.1 = value,
        None => {
            let at = kvs
                .iter()
                .rposition(|(k, _)| k.starts_with("tokenizer."))
                .map_or(kvs.len(), |i| i + 1);
            kvs.insert(at, kv(keys::tokenizer::CHAT_TEMPLATE, value));
        }
    }
}

/// A GGUF's own key/values, with the file type updated.
fn carried_over(kvs: &[Kv], file_type: FileType) -> Vec<Kv> {
    let mut out: Vec<Kv> = kvs
        .iter()
        .filter(|(k, _)| k != keys::general::FILE_TYPE && k != keys::general::QUANTIZATION_VERSION)
        // A split input's own split keys describe its files, not the output's.
        .filter(|(k, _)| !k.starts_with(keys::split::PREFIX))
        .cloned()
        .collect();
    let at = out
        .iter()
        .position(|(k, _)| !k.starts_with(keys::general::PREFIX))
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
