//! Hugging Face `tokenizer.json` files with a BPE model (Llama 3's byte-level BPE among them),
//! and the bos/eos entries of `config.json` and `tokenizer_config.json`. This module only reads
//! what the files say; whether a tokenizer can be converted is decided by the caller.

use serde_json::Value;

/// What a `tokenizer.json` says about its BPE model and how text is split before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizerJson {
    /// `vocab[id]` is the token string of `model.vocab` with that id.
    pub vocab: Vec<String>,
    /// `model.merges` as (left, right), in priority order.
    pub merges: Vec<(String, String)>,
    /// `model.ignore_merges` (absent means false, as in the tokenizers library).
    pub ignore_merges: bool,
    pub added_tokens: Vec<AddedToken>,
    /// The `type` of the normalizer, if there is one.
    pub normalizer: Option<String>,
    /// The pre-tokenizer's steps, a `Sequence` flattened.
    pub pre_tokenizer: Vec<PreStep>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedToken {
    pub id: u32,
    pub content: String,
    pub special: bool,
}

/// One pre-tokenizer step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreStep {
    Split {
        pattern: SplitPattern,
        behavior: String,
        invert: bool,
    },
    /// `use_regex`: whether it also splits with GPT-2's own pattern.
    ByteLevel { use_regex: bool },
    /// Any other step, by its `type`.
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitPattern {
    Regex(String),
    /// A literal string to split on.
    String(String),
}

/// A bos/eos token as a config file gives it: by id, or by its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRef {
    Id(u32),
    Content(String),
}

/// The bos and eos tokens one config file names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: Option<TokenRef>,
    pub eos: Option<TokenRef>,
}

pub fn parse(bytes: &[u8]) -> Result<TokenizerJson, String> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let model = root.get("model").ok_or("no \"model\" object")?;
    match model.get("type").and_then(Value::as_str) {
        Some("BPE") => {}
        Some(other) => return Err(format!("model type {other:?} is not BPE")),
        None => return Err("model has no \"type\" (expected \"BPE\")".into()),
    }
    let ignore_merges = match model.get("ignore_merges") {
        None | Some(Value::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or("model.ignore_merges is not true or false")?,
    };
    let normalizer = match root.get("normalizer") {
        None | Some(Value::Null) => None,
        Some(n) => Some(type_of(n, "normalizer")?.to_string()),
    };
    let mut pre_tokenizer = Vec::new();
    if let Some(p) = root.get("pre_tokenizer").filter(|p| !p.is_null()) {
        pre_steps(p, &mut pre_tokenizer)?;
    }
    Ok(TokenizerJson {
        vocab: vocab(model)?,
        merges: merges(model)?,
        ignore_merges,
        added_tokens: added_tokens(&root)?,
        normalizer,
        pre_tokenizer,
    })
}

/// `model.vocab`, ordered by id; the ids must be 0, 1, … with none missing or repeated.
fn vocab(model: &Value) -> Result<Vec<String>, String> {
    let map = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or("model.vocab is missing or not an object")?;
    let mut slots: Vec<Option<String>> = vec![None; map.len()];
    for (token, id) in map {
        let id = id
            .as_u64()
            .ok_or_else(|| format!("model.vocab: id of {token:?} is not a whole number"))?;
        let slot = usize::try_from(id)
            .ok()
            .and_then(|i| slots.get_mut(i))
            .ok_or_else(|| {
                format!(
                    "model.vocab: id {id} of {token:?} is out of range for {} tokens \
                     (ids must be contiguous from 0)",
                    map.len()
                )
            })?;
        if let Some(prev) = slot.replace(token.clone()) {
            return Err(format!(
                "model.vocab: id {id} is given to both {prev:?} and {token:?}"
            ));
        }
    }
    if slots.is_empty() {
        return Err("model.vocab is empty".into());
    }
    // n ids in 0..n with none repeated fill every slot.
    Ok(slots.into_iter().flatten().collect())
}

/// `model.merges`: `"left right"` strings (older files) or `["left", "right"]` pairs.
fn merges(model: &Value) -> Result<Vec<(String, String)>, String> {
    let list = match model.get("merges") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(v) => v.as_array().ok_or("model.merges is not a list")?,
    };
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let pair = match m {
                Value::String(s) => {
                    let mut parts = s.split(' ');
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(l), Some(r), None) => Some((l.to_string(), r.to_string())),
                        _ => None,
                    }
                }
                Value::Array(a) => match a.as_slice() {
                    [Value::String(l), Value::String(r)] => Some((l.clone(), r.clone())),
                    _ => None,
                },
                _ => None,
            };
            pair.ok_or_else(|| {
                format!(
                    "model.merges[{i}]: expected \"left right\" or [\"left\", \"right\"], got {m}"
                )
            })
        })
        .collect()
}

fn added_tokens(root: &Value) -> Result<Vec<AddedToken>, String> {
    let list = match root.get("added_tokens") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(v) => v.as_array().ok_or("added_tokens is not a list")?,
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let id = t
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| format!("added_tokens[{i}]: no valid \"id\""))?;
            let content = t
                .get("content")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("added_tokens[{i}]: no \"content\" string"))?;
            let special = match t.get("special") {
                None | Some(Value::Null) => false,
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| format!("added_tokens[{i}]: \"special\" is not a boolean"))?,
            };
            Ok(AddedToken {
                id,
                content: content.to_string(),
                special,
            })
        })
        .collect()
}

fn type_of<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what} has no \"type\""))
}

/// Append the steps of pre-tokenizer `p`, descending into `Sequence`s.
fn pre_steps(p: &Value, out: &mut Vec<PreStep>) -> Result<(), String> {
    match type_of(p, "pre_tokenizer")? {
        "Sequence" => {
            let steps = p
                .get("pretokenizers")
                .and_then(Value::as_array)
                .ok_or("pre_tokenizer Sequence has no \"pretokenizers\" list")?;
            for s in steps {
                pre_steps(s, out)?;
            }
        }
        "Split" => {
            let pattern = p
                .get("pattern")
                .ok_or("Split pre-tokenizer has no pattern")?;
            let pattern = if let Some(r) = pattern.get("Regex").and_then(Value::as_str) {
                SplitPattern::Regex(r.to_string())
            } else if let Some(s) = pattern.get("String").and_then(Value::as_str) {
                SplitPattern::String(s.to_string())
            } else {
                return Err(format!(
                    "Split pre-tokenizer pattern {pattern} is neither {{\"Regex\": …}} nor {{\"String\": …}}"
                ));
            };
            out.push(PreStep::Split {
                pattern,
                behavior: p
                    .get("behavior")
                    .and_then(Value::as_str)
                    .ok_or("Split pre-tokenizer has no \"behavior\"")?
                    .to_string(),
                invert: p.get("invert").and_then(Value::as_bool).unwrap_or(false),
            });
        }
        // The tokenizers library's default for a missing use_regex is true.
        "ByteLevel" => out.push(PreStep::ByteLevel {
            use_regex: p.get("use_regex").and_then(Value::as_bool).unwrap_or(true),
        }),
        other => out.push(PreStep::Other(other.to_string())),
    }
    Ok(())
}

/// `bos_token_id` / `eos_token_id` of a `config.json` (eos may be a list: the first counts).
pub fn config_special_tokens(bytes: &[u8]) -> Result<SpecialTokens, String> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let id = |key: &str| -> Result<Option<TokenRef>, String> {
        let v = match root.get(key) {
            Some(Value::Array(a)) => a.first(),
            v => v,
        };
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .map(|i| Some(TokenRef::Id(i)))
                .ok_or_else(|| format!("{key} {v} is not a token id")),
        }
    };
    Ok(SpecialTokens {
        bos: id("bos_token_id")?,
        eos: id("eos_token_id")?,
    })
}

/// `bos_token` / `eos_token` of a `tokenizer_config.json`: a string or `{"content": …}`.
pub fn tokenizer_config_special_tokens(bytes: &[u8]) -> Result<SpecialTokens, String> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let content = |key: &str| -> Result<Option<TokenRef>, String> {
        let v = match root.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v,
        };
        v.as_str()
            .or_else(|| v.get("content").and_then(Value::as_str))
            .map(|s| Some(TokenRef::Content(s.to_string())))
            .ok_or_else(|| format!("{key} {v} is neither a string nor {{\"content\": …}}"))
    };
    Ok(SpecialTokens {
        bos: content("bos_token")?,
        eos: content("eos_token")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(model: &str, rest: &str) -> Vec<u8> {
        format!(r#"{{"model": {model}{rest}}}"#).into_bytes()
    }

    const PRE: &str = r#", "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\s+|\\w+"}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}"#;

    #[test]
    fn reads_both_merge_forms_and_added_tokens() {
        let old = file(
            r#"{"type": "BPE", "vocab": {"b": 1, "a": 0, "ab": 2}, "merges": ["a b"]}"#,
            r#", "added_tokens": [{"id": 3, "content": "<s>", "special": true}]"#,
        );
        let t = parse(&old).unwrap();
        assert_eq!(t.vocab, ["a", "b", "ab"]);
        assert_eq!(t.merges, [("a".to_string(), "b".to_string())]);
        assert!(!t.ignore_merges);
        assert_eq!(
            t.added_tokens,
            [AddedToken {
                id: 3,
                content: "<s>".into(),
                special: true
            }]
        );
        assert!(t.pre_tokenizer.is_empty());
        let new = file(
            r#"{"type": "BPE", "ignore_merges": true, "vocab": {"a": 0, "b": 1, "ab": 2},
                "merges": [["a", "b"]]}"#,
            PRE,
        );
        let t = parse(&new).unwrap();
        assert_eq!(t.merges, [("a".to_string(), "b".to_string())]);
        assert!(t.ignore_merges);
        assert_eq!(
            t.pre_tokenizer,
            [
                PreStep::Split {
                    pattern: SplitPattern::Regex(r"\s+|\w+".into()),
                    behavior: "Isolated".into(),
                    invert: false
                },
                PreStep::ByteLevel { use_regex: false }
            ]
        );
        let bad = file(
            r#"{"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}"#,
            "",
        );
        assert!(parse(&bad).unwrap_err().contains("model.merges[0]"));
        let bad = file(
            r#"{"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}"#,
            "",
        );
        assert!(parse(&bad).unwrap_err().contains("model.merges[0]"));
    }

    #[test]
    fn refuses_bad_vocab_and_models() {
        let gap = file(r#"{"type": "BPE", "vocab": {"a": 0, "b": 2}}"#, "");
        assert!(parse(&gap).unwrap_err().contains("out of range"));
        let dup = file(r#"{"type": "BPE", "vocab": {"a": 0, "b": 0}}"#, "");
        assert!(parse(&dup).unwrap_err().contains("given to both"));
        let neg = file(r#"{"type": "BPE", "vocab": {"a": -1}}"#, "");
        assert!(parse(&neg).unwrap_err().contains("not a whole number"));
        assert!(parse(b"{}").unwrap_err().contains("no \"model\""));
        let wp = file(r#"{"type": "WordPiece", "vocab": {"a": 0}}"#, "");
        assert!(parse(&wp).unwrap_err().contains("\"WordPiece\" is not BPE"));
        assert!(parse(b"{").unwrap_err().contains("invalid JSON"));
        let other = file(
            r#"{"type": "BPE", "vocab": {"a": 0}}"#,
            r#", "pre_tokenizer": {"type": "Digits"}, "normalizer": {"type": "NFC"}"#,
        );
        let t = parse(&other).unwrap();
        assert_eq!(t.pre_tokenizer, [PreStep::Other("Digits".into())]);
        assert_eq!(t.normalizer.as_deref(), Some("NFC"));
    }

    #[test]
    fn reads_special_token_configs() {
        let c = config_special_tokens(br#"{"bos_token_id": 1, "eos_token_id": [7, 8]}"#).unwrap();
        assert_eq!(c.bos, Some(TokenRef::Id(1)));
        assert_eq!(c.eos, Some(TokenRef::Id(7)));
        let c = config_special_tokens(br#"{"bos_token_id": null}"#).unwrap();
        assert_eq!(c, SpecialTokens::default());
        assert!(config_special_tokens(br#"{"bos_token_id": "x"}"#).is_err());
        let t = tokenizer_config_special_tokens(
            br#"{"bos_token": "<s>", "eos_token": {"content": "</s>", "special": true}}"#,
        )
        .unwrap();
        assert_eq!(t.bos, Some(TokenRef::Content("<s>".into())));
        assert_eq!(t.eos, Some(TokenRef::Content("</s>".into())));
        assert!(tokenizer_config_special_tokens(br#"{"bos_token": 3}"#).is_err());
    }
}
