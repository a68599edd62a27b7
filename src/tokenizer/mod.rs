//! Tokenizers, in one place: a checkpoint's vocabulary read from its files ([`folder`]), turned
//! into GGUF keys ([`gguf_keys`], with byte-level BPE vocabularies built by [`bpe_vocab`]), and
//! loaded back from a GGUF into a [`Tokenizer`] that encodes and decodes exactly as llama.cpp's
//! `llama_tokenize` / `llama_token_to_piece` do with `parse_special = false`: SentencePiece
//! ("llama") vocabularies through [`spm`], byte-level BPE ("gpt2", Llama 3) through [`bpe`].
//!
//! SentencePiece encoding:
//! 1. The text is split around user-defined pieces (longest first), which become their own ids;
//!    control and unknown pieces are plain text (llama.cpp does the same without `parse_special`).
//! 2. Each text fragment at the start or after a user-defined piece gets a leading space when
//!    `add_space_prefix` (GGUF `tokenizer.ggml.add_space_prefix`, SentencePiece
//!    `add_dummy_prefix`; default true), and every `' '` becomes `'▁'` (U+2581). No other
//!    normalization: the Llama 1/2 models use SentencePiece's "identity" normalizer and keep
//!    repeated spaces (`remove_extra_whitespaces` false).
//! 3. Starting from one symbol per character, the adjacent pair whose concatenation is a piece
//!    of highest score is merged, again and again (ties: the leftmost pair). A heap of candidate
//!    pairs keeps this O(n log n); stale entries are skipped when popped.
//! 4. A character left that is not a piece becomes its UTF-8 bytes as `<0xXX>` pieces (byte
//!    fallback), or the unknown id when the vocabulary lacks one of those byte pieces.
//!
//! Leading, trailing and repeated spaces are kept, and the dummy prefix comes before them: a
//! line " = A =" starts "▁▁=". SentencePiece agrees for models with `remove_extra_whitespaces`
//! false (all Llama models); with it true SentencePiece would strip and collapse spaces first,
//! which llama.cpp (and this tokenizer) never does.
//!
//! Where llama.cpp and the `sentencepiece` library differ, this follows llama.cpp: a merge may
//! produce any piece of the vocabulary (SentencePiece only merges into normal, user-defined and
//! unused pieces, and re-splits unused ones). Neither difference shows on the Llama 2 vocabulary.
//!
//! Decoding follows SentencePiece's `DecodeIds`: `▁` becomes a space, runs of byte pieces are
//! read as UTF-8 (each byte of an invalid sequence becomes U+FFFD), control pieces print nothing,
//! and the leading space of the first piece is dropped (the dummy prefix) unless something was
//! printed before it. Unknown and unused pieces print nothing, as llama.cpp's
//! `llama_token_to_piece` does without `special` (SentencePiece would print " ⁇ " for unknown).

use bpe::Bpe;
use llq_formats::gguf::{Array, GgufFile, Value};
use llq_formats::sentencepiece::SpmModel;
use llq_types::keys;
use llq_types::TokenType;
use specials::Specials;
use std::collections::HashMap;

mod bpe;
pub mod bpe_vocab;
pub mod chat;
mod decode;
pub mod folder;
pub mod gguf_keys;
mod gpt2;
pub mod specials;
mod spm;

/// A checkpoint's vocabulary, as its tokenizer files give it, before it becomes GGUF keys.
#[derive(Clone)]
pub struct Vocabulary {
    pub tokens: Tokens,
    pub specials: Specials,
}

/// The tokens of a vocabulary and how they are merged.
#[derive(Clone)]
pub enum Tokens {
    /// A SentencePiece `tokenizer.model` (Llama 1/2).
    SentencePiece(SpmModel),
    /// A byte-level BPE (Llama 3: a tiktoken `tokenizer.model` or a `tokenizer.json`).
    Bpe(bpe_vocab::BpeVocab),
}

/// What a tokenizer is built from, whatever the source (GGUF keys or a `tokenizer.model`).
struct Vocab {
    pieces: Vec<String>,
    scores: Vec<f32>,
    types: Vec<TokenType>,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    add_space_prefix: bool,
    add_bos: bool,
    add_eos: bool,
    /// Byte-level BPE merges ("gpt2" vocabularies); `None` for SentencePiece.
    merges: Option<Vec<String>>,
    eot: Option<u32>,
    eom: Option<u32>,
    chat_template: Option<String>,
}

pub struct Tokenizer {
    pieces: Vec<String>,
    scores: Vec<f32>,
    types: Vec<TokenType>,
    /// Piece text → id. A piece given twice maps to its last id, as in llama.cpp.
    index: HashMap<String, u32>,
    /// Id of the byte piece `<0xXX>` (or failing that, of the one-byte piece) for each byte.
    byte_ids: [Option<u32>; 256],
    /// Value of each byte piece, by id.
    byte_values: HashMap<u32, u8>,
    /// User-defined pieces, longest first: split out of the text before encoding.
    user_defined: Vec<u32>,
    /// Control, unknown and user-defined pieces, longest first: split out of the text when
    /// special tokens are parsed (a rendered chat template).
    parsed_specials: Vec<u32>,
    bos: u32,
    eos: u32,
    unk: Option<u32>,
    add_space_prefix: bool,
    add_bos: bool,
    add_eos: bool,
    /// The byte-level BPE model of a "gpt2" (Llama 3) vocabulary.
    bpe: Option<Box<Bpe>>,
    /// Every token that ends generation: EOS, end of turn and of message, and the control
    /// tokens with an end-of-generation text (llama.cpp's set).
    eog: Vec<u32>,
    chat_template: Option<String>,
    /// No piece contains a newline, so no merge crosses one and text can be merged line by
    /// line with the same result (bounding the merge state by the longest line).
    newline_free: bool,
}

const SPACE: char = '\u{2581}';

/// Texts of control tokens that end generation whatever the ids say, as in llama.cpp's
/// vocabulary loader (end of text, turn or message of the common chat formats).
const END_OF_GENERATION: [&str; 12] = [
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|im_end|>",
    "<|end|>",
    "<|endoftext|>",
    "<end_of_turn>",
    "</s>",
    "<eos>",
    "<EOT>",
    "[EOS]",
    "<end_of_utterance>",
];

// llama.cpp's defaults for the "llama" tokenizer when the GGUF has no id keys.
const DEFAULT_BOS: u32 = 1;
const DEFAULT_EOS: u32 = 2;
const DEFAULT_UNK: u32 = 0;

impl Tokenizer {
    /// The tokenizer of a GGUF file (`tokenizer.ggml.*` keys): SentencePiece ("llama") or
    /// byte-level BPE ("gpt2" with Llama 3's pre-tokenizer). Errors name the file.
    pub fn from_gguf(file: &GgufFile) -> crate::Result<Tokenizer> {
        Tokenizer::read_gguf(file).map_err(|m| crate::Error::file(&file.path, m))
    }

    /// The tokenizer of a loaded model.
    pub fn from_model(model: &crate::runtime::model::Model) -> crate::Result<Tokenizer> {
        Tokenizer::from_gguf(&model.file)
    }

    fn read_gguf(file: &GgufFile) -> Result<Tokenizer, String> {
        let get = |key: &str| file.get(key);
        let model = get(keys::tokenizer::MODEL)
            .ok_or("no tokenizer in the file (tokenizer.ggml.model missing)")?
            .as_str()
            .ok_or("tokenizer.ggml.model is not a string")?;
        let is_bpe = match model {
            "llama" => false,
            "gpt2" => true,
            other => {
                return Err(format!(
                    "tokenizer.ggml.model \"{other}\" is not supported \
                     (\"llama\" SentencePiece or \"gpt2\" byte-level BPE)"
                ))
            }
        };
        if is_bpe {
            match get(keys::tokenizer::PRE).and_then(Value::as_str) {
                Some("llama-bpe") | Some("llama3") | Some("default") | None => {}
                Some(other) => {
                    return Err(format!(
                        "BPE pre-tokenizer \"{other}\" is not supported (only \"llama-bpe\")"
                    ))
                }
            }
        }
        let merges = if is_bpe {
            match get(keys::tokenizer::MERGES).and_then(Value::as_array) {
                Some(Array::String(v)) => Some(v.clone()),
                Some(_) => return Err("tokenizer.ggml.merges is not an array of strings".into()),
                None => {
                    return Err("tokenizer.ggml.merges missing (needed by a BPE vocabulary)".into())
                }
            }
        } else {
            None
        };
        let pieces = match get(keys::tokenizer::TOKENS).and_then(Value::as_array) {
            Some(Array::String(v)) => v.clone(),
            Some(_) => return Err("tokenizer.ggml.tokens is not an array of strings".into()),
            None => return Err("tokenizer.ggml.tokens missing".into()),
        };
        let n = pieces.len();
        let scores = match get(keys::tokenizer::SCORES).and_then(Value::as_array) {
            Some(Array::F32(v)) => v.clone(),
            Some(Array::F64(v)) => v.iter().map(|&x| x as f32).collect(),
            Some(_) => return Err("tokenizer.ggml.scores is not an array of floats".into()),
            // llama.cpp: no scores means every piece scores 0.
            None => vec![0.0; n],
        };
        let types = match get(keys::tokenizer::TOKEN_TYPE).and_then(Value::as_array) {
            Some(a) => int_array(a)
                .ok_or("tokenizer.ggml.token_type is not an array of integers")?
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    TokenType::from_id(t).ok_or_else(|| format!("token {i}: unknown type {t}"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![TokenType::Normal; n],
        };
        if scores.len() != n || types.len() != n {
            return Err(format!(
                "tokenizer.ggml.tokens has {n} entries but scores {} and token_type {}",
                scores.len(),
                types.len()
            ));
        }
        let id = |key: &str, default: u32| -> Result<Option<u32>, String> {
            match get(key) {
                None => Ok(Some(default)),
                Some(v) => match v.as_u64() {
                    Some(id) => Ok(u32::try_from(id).ok()),
                    // A negative id (some writers) means "none".
                    None if matches!(v, Value::I32(_) | Value::I64(_)) => Ok(None),
                    None => Err(format!("{key} is not an integer")),
                },
            }
        };
        let flag = |key: &str, default: bool| -> Result<bool, String> {
            match get(key) {
                None => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(format!("{key} is not a bool")),
            }
        };
        let turn_end = |key: &str, text: &str| match get(key) {
            Some(v) => v.as_u64().and_then(|id| u32::try_from(id).ok()),
            None => pieces.iter().rposition(|p| p == text).map(|i| i as u32),
        };
        Tokenizer::new(Vocab {
            scores,
            types,
            bos: id(keys::tokenizer::BOS_ID, DEFAULT_BOS)?,
            eos: id(keys::tokenizer::EOS_ID, DEFAULT_EOS)?,
            unk: id(keys::tokenizer::UNKNOWN_ID, DEFAULT_UNK)?,
            add_space_prefix: flag(keys::tokenizer::ADD_SPACE_PREFIX, !is_bpe)?,
            add_bos: flag(keys::tokenizer::ADD_BOS, true)?,
            add_eos: flag(keys::tokenizer::ADD_EOS, false)?,
            merges,
            // Without the keys, the Llama 3 texts, as llama.cpp guesses them.
            eot: turn_end(keys::tokenizer::EOT_ID, "<|eot_id|>"),
            eom: turn_end(keys::tokenizer::EOM_ID, "<|eom_id|>"),
            chat_template: get(keys::tokenizer::CHAT_TEMPLATE)
                .and_then(Value::as_str)
                .map(str::to_string),
            pieces,
        })
    }

    /// The tokenizer of a SentencePiece `tokenizer.model` (the same vocabulary llq writes to GGUF).
    pub fn from_spm(spm: &SpmModel) -> Result<Tokenizer, String> {
        Tokenizer::new(Vocab {
            pieces: spm.pieces.iter().map(|p| p.piece.clone()).collect(),
            scores: spm.pieces.iter().map(|p| p.score).collect(),
            types: spm.pieces.iter().map(|p| p.kind).collect(),
            bos: u32::try_from(spm.bos_id).ok(),
            eos: u32::try_from(spm.eos_id).ok(),
            unk: u32::try_from(spm.unk_id).ok(),
            add_space_prefix: spm.add_dummy_prefix,
            add_bos: true,
            add_eos: false,
            merges: None,
            eot: None,
            eom: None,
            chat_template: None,
        })
    }

    /// The one constructor behind `from_gguf` and `from_spm`.
    fn new(v: Vocab) -> Result<Tokenizer, String> {
        let n = v.pieces.len();
        if n == 0 {
            return Err("the vocabulary is empty".into());
        }
        if u32::try_from(n).is_err() {
            return Err(format!("{n} pieces is too many"));
        }
        let check = |what: &str, id: Option<u32>| -> Result<Option<u32>, String> {
            match id {
                Some(id) if id as usize >= n => Err(format!(
                    "{what} token id {id} is outside the vocabulary ({n} pieces)"
                )),
                _ => Ok(id),
            }
        };
        let bos = check("BOS", v.bos)?.ok_or("the vocabulary has no BOS token")?;
        let eos = check("EOS", v.eos)?.ok_or("the vocabulary has no EOS token")?;
        let unk = check("unknown", v.unk)?;
        let eot = check("EOT", v.eot)?;
        let eom = check("EOM", v.eom)?;
        let bpe = match &v.merges {
            Some(merges) => {
                let printable: Vec<bool> = v
                    .types
                    .iter()
                    .map(|t| matches!(t, TokenType::Normal | TokenType::UserDefined))
                    .collect();
                Some(Box::new(Bpe::new(&v.pieces, &printable, merges)?))
            }
            None => None,
        };

        let mut index = HashMap::with_capacity(n);
        for (i, p) in v.pieces.iter().enumerate() {
            index.insert(p.clone(), i as u32);
        }
        let mut byte_values = HashMap::new();
        for (i, (p, t)) in v.pieces.iter().zip(&v.types).enumerate() {
            if *t == TokenType::Byte {
                let b = parse_byte_piece(p)
                    .ok_or_else(|| format!("token {i}: byte piece {p:?} is not <0xXX>"))?;
                byte_values.insert(i as u32, b);
            }
        }
        let mut byte_ids = [None; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            // llama.cpp's byte_to_token: "<0xXX>", else the byte itself as a piece.
            let hex = format!("<0x{b:02X}>");
            *slot = index.get(hex.as_str()).copied().or_else(|| {
                let one = [b as u8];
                std::str::from_utf8(&one)
                    .ok()
                    .and_then(|s| index.get(s).copied())
            });
        }
        let longest_first = |keep: fn(TokenType) -> bool| {
            let mut ids: Vec<u32> = (0..n as u32)
                .filter(|&i| keep(v.types[i as usize]) && !v.pieces[i as usize].is_empty())
                .collect();
            ids.sort_by_key(|&i| std::cmp::Reverse(v.pieces[i as usize].len()));
            ids
        };
        let user_defined = longest_first(|t| t == TokenType::UserDefined);
        let parsed_specials = longest_first(|t| {
            matches!(
                t,
                TokenType::Control | TokenType::UserDefined | TokenType::Unknown
            )
        });
        let newline_free = !v.pieces.iter().any(|p| p.contains('\n'));
        let mut eog: Vec<u32> = (0..n as u32)
            .filter(|&i| {
                v.types[i as usize] == TokenType::Control
                    && END_OF_GENERATION.contains(&v.pieces[i as usize].as_str())
            })
            .chain([Some(eos), eot, eom].into_iter().flatten())
            .collect();
        eog.sort_unstable();
        eog.dedup();
        Ok(Tokenizer {
            pieces: v.pieces,
            scores: v.scores,
            types: v.types,
            index,
            byte_ids,
            byte_values,
            user_defined,
            parsed_specials,
            bos,
            eos,
            unk,
            add_space_prefix: v.add_space_prefix,
            add_bos: v.add_bos,
            add_eos: v.add_eos,
            bpe,
            eog,
            chat_template: v.chat_template,
            newline_free,
        })
    }

    pub fn bos(&self) -> u32 {
        self.bos
    }

    pub fn eos(&self) -> u32 {
        self.eos
    }

    pub fn n_vocab(&self) -> usize {
        self.pieces.len()
    }

    /// Whether the model wants BOS prepended (`tokenizer.ggml.add_bos_token`, default true).
    pub fn add_bos_default(&self) -> bool {
        self.add_bos
    }

    /// Whether the model wants EOS appended (`tokenizer.ggml.add_eos_token`, default false).
    pub fn add_eos_default(&self) -> bool {
        self.add_eos
    }

    /// The piece text of `id` (as stored: `▁` for spaces, `<0xXX>` for bytes).
    pub fn piece(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(String::as_str)
    }

    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// Whether `id` ends generation (as llama.cpp's `llama_vocab_is_eog`).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The model's default chat template (`tokenizer.chat_template`), if it has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Token ids of `text`, with BOS first if `add_bos` (whatever the model's `add_bos_token`;
    /// EOS is never appended): llama.cpp's `llama_tokenize(text, add_special = add_bos,
    /// parse_special = false)` for Llama models. See [`Tokenizer::tokenize`] for the flags.
    pub fn encode(&self, text: &str, add_bos: bool) -> Vec<u32> {
        self.encode_parts(text, add_bos, &self.user_defined)
    }

    /// [`Tokenizer::encode`] with special tokens parsed (`parse_special = true`): the text of
    /// a control, unknown or user-defined token is that token, as in a rendered chat prompt.
    pub fn encode_special(&self, text: &str, add_bos: bool) -> Vec<u32> {
        self.encode_parts(text, add_bos, &self.parsed_specials)
    }

    /// Encode `text` with the tokens `split` (longest first) cut out of it as themselves.
    fn encode_parts(&self, text: &str, add_bos: bool, split: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos {
            out.push(self.bos);
        }
        if text.is_empty() {
            return out;
        }
        if let Some(bpe) = &self.bpe {
            for fragment in self.split_out(text, split) {
                match fragment {
                    Fragment::Token(id) => out.push(id),
                    Fragment::Text(t) => bpe.encode(t, &mut out),
                }
            }
            return out;
        }
        let mut prev_special = true;
        for fragment in self.split_out(text, split) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) => {
                    let lines = t.split_inclusive(|c: char| self.newline_free && c == '\n');
                    for (i, line) in lines.enumerate() {
                        let mut escaped = String::with_capacity(line.len() + 3);
                        if i == 0 && self.add_space_prefix && prev_special {
                            escaped.push(SPACE);
                        }
                        for c in line.chars() {
                            escaped.push(if c == ' ' { SPACE } else { c });
                        }
                        self.encode_fragment(&escaped, &mut out);
                    }
                    prev_special = false;
                }
            }
        }
        out
    }

    /// Exactly llama.cpp's `llama_tokenize(text, add_special, parse_special = false)`: BOS first
    /// and EOS last when `add_special` and the model asks for them (`add_bos_token`,
    /// `add_eos_token`).
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<u32> {
        let mut ids = self.encode(text, add_special && self.add_bos);
        if add_special && self.add_eos {
            ids.push(self.eos);
        }
        ids
    }

    /// llama.cpp's `tokenizer_st_partition`: the pieces `split` (user-defined ones, or all
    /// special ones when parsing them) are cut out of the text, longest first, leftmost
    /// occurrences first.
    fn split_out<'t>(&self, text: &'t str, split: &[u32]) -> Vec<Fragment<'t>> {
        let mut fragments = vec![Fragment::Text(text)];
        for &id in split {
            let piece = self.pieces[id as usize].as_str();
            if !text.contains(piece) {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len());
            for f in fragments {
                let Fragment::Text(mut rest) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(at) = rest.find(piece) {
                    if at > 0 {
                        next.push(Fragment::Text(&rest[..at]));
                    }
                    next.push(Fragment::Token(id));
                    rest = &rest[at + piece.len()..];
                }
                if !rest.is_empty() {
                    next.push(Fragment::Text(rest));
                }
            }
            fragments = next;
        }
        fragments
    }
}

fn parse_byte_piece(p: &str) -> Option<u8> {
    let hex = p.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

fn int_array(a: &Array) -> Option<Vec<i64>> {
    Some(match a {
        Array::I32(v) => v.iter().map(|&x| x.into()).collect(),
        Array::U32(v) => v.iter().map(|&x| x.into()).collect(),
        Array::I8(v) => v.iter().map(|&x| x.into()).collect(),
        Array::U8(v) => v.iter().map(|&x| x.into()).collect(),
        Array::I16(v) => v.iter().map(|&x| x.into()).collect(),
        Array::U16(v) => v.iter().map(|&x| x.into()).collect(),
        Array::I64(v) => v.clone(),
        _ => return None,
    })
}

enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: unk, bos, eos, byte pieces for a few bytes, then normal pieces.
    fn toy(extra: &[(&str, f32, TokenType)], space_prefix: bool) -> Tokenizer {
        let mut pieces = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        let mut scores = vec![0.0; 3];
        let mut types = vec![TokenType::Unknown, TokenType::Control, TokenType::Control];
        for b in [0xE4u8, 0xB8, 0xAD, b'!'] {
            pieces.push(format!("<0x{b:02X}>"));
            scores.push(0.0);
            types.push(TokenType::Byte);
        }
        for &(p, s, t) in extra {
            pieces.push(p.into());
            scores.push(s);
            types.push(t);
        }
        Tokenizer::new(Vocab {
            pieces,
            scores,
            types,
            bos: Some(1),
            eos: Some(2),
            unk: Some(0),
            add_space_prefix: space_prefix,
            add_bos: true,
            add_eos: false,
            merges: None,
            eot: None,
            eom: None,
            chat_template: None,
        })
        .unwrap()
    }

    fn normal(p: &str, s: f32) -> (&str, f32, TokenType) {
        (p, s, TokenType::Normal)
    }

    #[test]
    fn merges_by_score_then_leftmost() {
        // ids: 7 ▁, 8 a, 9 b, 10 ab, 11 ▁a, 12 ba
        let t = toy(
            &[
                normal("▁", -5.0),
                normal("a", -5.0),
                normal("b", -5.0),
                normal("ab", -1.0),
                normal("▁a", -2.0),
                normal("ba", -1.0),
            ],
            true,
        );
        // "▁aba": ab (-1, left 1) and ba (-1, left 2) tie → the leftmost, ab; ▁ab and aba are
        // no pieces, and ▁a lost its right side: ▁ ab a.
        assert_eq!(t.encode("aba", false), vec![7, 10, 8]);
        assert_eq!(t.encode("aba", true), vec![1, 7, 10, 8]);
        assert_eq!(t.encode("", true), vec![1]);
        assert_eq!(t.encode("", false), Vec::<u32>::new());
        // Unknown characters: bytes when all byte pieces exist, else unk per character.
        assert_eq!(t.encode("中", false), vec![7, 3, 4, 5]);
        assert_eq!(t.encode("é", false), vec![7, 0]);
        assert_eq!(t.encode("!", false), vec![7, 6]);
    }

    #[test]
    fn decode_drops_dummy_prefix_once() {
        let t = toy(
            &[normal("▁", -5.0), normal("a", -5.0), normal("▁a", -1.0)],
            true,
        );
        let ids = t.encode("a a", true);
        assert_eq!(ids, vec![1, 9, 9]);
        assert_eq!(t.decode(&ids), "a a");
        assert_eq!(t.decode(&t.encode(" a", true)), " a");
        assert_eq!(t.decode(&t.encode("中a", true)), "中a");
        // A byte run cut short: one U+FFFD per byte, like SentencePiece.
        assert_eq!(t.decode(&[3, 4, 8]), "\u{FFFD}\u{FFFD}a");
        // Streaming holds back an incomplete character.
        let mut d = t.decoder();
        assert_eq!(d.push(1), "");
        assert_eq!(d.push(3), "");
        assert_eq!(d.push(4), "");
        assert_eq!(d.push(5), "中");
        assert_eq!(d.push(9), " a");
        assert_eq!(d.push(3), "");
        assert_eq!(d.finish(), "\u{FFFD}");
        let no_prefix = toy(&[normal("▁", -5.0), normal("a", -5.0)], false);
        assert_eq!(no_prefix.encode(" a", false), vec![7, 8]);
        assert_eq!(no_prefix.decode(&[7, 8]), " a");
    }

    #[test]
    fn tokenize_follows_the_model_flags() {
        let mut t = toy(&[normal("▁", -5.0), normal("a", -5.0)], true);
        assert_eq!(t.tokenize("a", true), vec![1, 7, 8]);
        assert_eq!(t.tokenize("a", false), vec![7, 8]);
        t.add_bos = false;
        t.add_eos = true;
        assert_eq!(t.tokenize("a", true), vec![7, 8, 2]);
        assert_eq!(t.tokenize("a", false), vec![7, 8]);
        assert_eq!(t.encode("a", true), vec![1, 7, 8]);
    }

    #[test]
    fn user_defined_pieces_split_first() {
        let t = toy(
            &[
                normal("▁", -5.0),
                normal("a", -5.0),
                ("<x>", 0.0, TokenType::UserDefined),
            ],
            true,
        );
        // llama.cpp: the text after a user-defined piece gets the space prefix again.
        assert_eq!(t.encode("a<x>a", false), vec![7, 8, 9, 7, 8]);
        assert_eq!(t.decode(&[8, 9, 8]), "a<x>a");
    }
}
