//! A vocabulary as GGUF `tokenizer.*` keys, with exactly the value types llama.cpp checks.

use super::bpe_vocab::BpeVocab;
use super::specials::Specials;
use super::{Tokens, Vocabulary};
use llq_formats::gguf::{Array, Value};
use llq_formats::sentencepiece::SpmModel;
use llq_formats::tokenizer_config::NamedTemplate;
use llq_types::keys;

type Kv = (String, Value);

fn kv(key: &str, value: Value) -> Kv {
    (key.to_string(), value)
}

/// The keys of `vocab`, in a fixed order (the output is deterministic): the tokens, the
/// special ids, the BOS/EOS flags, then the chat templates.
pub fn vocabulary_keys(vocab: &Vocabulary) -> Vec<Kv> {
    let mut out = match &vocab.tokens {
        Tokens::SentencePiece(spm) => sentencepiece_tokens(spm),
        Tokens::Bpe(bpe) => bpe_tokens(bpe),
    };
    out.extend(special_keys(&vocab.specials));
    out.extend(template_keys(&vocab.specials.chat_templates));
    out
}

/// The keys llq writes for a Meta SentencePiece `tokenizer.model` on its own.
pub fn sentencepiece_keys(spm: &SpmModel) -> Vec<Kv> {
    vocabulary_keys(&Vocabulary {
        specials: Specials::of_sentencepiece(spm),
        tokens: Tokens::SentencePiece(spm.clone()),
    })
}

/// SentencePiece pieces as llama.cpp's "llama" tokenizer reads them. SentencePiece's piece
/// types (1 normal … 6 byte) are the same numbers as llama.cpp's token types.
fn sentencepiece_tokens(spm: &SpmModel) -> Vec<Kv> {
    let tokens = spm.pieces.iter().map(|p| p.piece.clone()).collect();
    let scores = spm.pieces.iter().map(|p| p.score).collect();
    let types = spm.pieces.iter().map(|p| p.kind.id()).collect();
    vec![
        kv(keys::tokenizer::MODEL, Value::String("llama".into())),
        kv(keys::tokenizer::PRE, Value::String("default".into())),
        kv(keys::tokenizer::TOKENS, Value::Array(Array::String(tokens))),
        kv(keys::tokenizer::SCORES, Value::Array(Array::F32(scores))),
        kv(keys::tokenizer::TOKEN_TYPE, Value::Array(Array::I32(types))),
    ]
}

/// A byte-level BPE vocabulary (Llama 3) as llama.cpp's "gpt2" tokenizer with the "llama-bpe"
/// pre-tokenizer reads it.
fn bpe_tokens(v: &BpeVocab) -> Vec<Kv> {
    vec![
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
    ]
}

/// The ids that are set (llama.cpp wants an absent key for "none"), then both flags.
fn special_keys(s: &Specials) -> Vec<Kv> {
    let ids = [
        (keys::tokenizer::BOS_ID, s.bos),
        (keys::tokenizer::EOS_ID, s.eos),
        (keys::tokenizer::UNKNOWN_ID, s.unk),
        (keys::tokenizer::PADDING_ID, s.pad),
        (keys::tokenizer::EOT_ID, s.eot),
        (keys::tokenizer::EOM_ID, s.eom),
    ];
    let mut out: Vec<Kv> = ids
        .into_iter()
        .filter_map(|(key, id)| Some(kv(key, Value::U32(id?))))
        .collect();
    out.push(kv(keys::tokenizer::ADD_BOS, Value::Bool(s.add_bos)));
    out.push(kv(keys::tokenizer::ADD_EOS, Value::Bool(s.add_eos)));
    out
}

/// Chat templates as llama.cpp's converter writes them: the default one under
/// `tokenizer.chat_template`, each named one under `tokenizer.chat_template.NAME` (NAME with
/// every character but ASCII letters and digits made `_`), and the names in
/// `tokenizer.chat_templates` (in file order here; llama.cpp's order is a Python set's).
pub fn template_keys(templates: &[NamedTemplate]) -> Vec<Kv> {
    let mut out = Vec::new();
    let mut names = Vec::new();
    for t in templates {
        let name: String = t
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if name.is_empty() {
            continue;
        }
        if name == "default" {
            out.push(kv(
                keys::tokenizer::CHAT_TEMPLATE,
                Value::String(t.template.clone()),
            ));
        } else {
            out.push(kv(
                &format!("{}.{name}", keys::tokenizer::CHAT_TEMPLATE),
                Value::String(t.template.clone()),
            ));
            names.push(name);
        }
    }
    if !names.is_empty() {
        out.push(kv(
            keys::tokenizer::CHAT_TEMPLATES,
            Value::Array(Array::String(names)),
        ));
    }
    out
}
