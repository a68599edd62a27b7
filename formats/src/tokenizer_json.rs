//! Hugging Face `tokenizer.json` files with a BPE model (Llama 3's byte-level BPE among them).
//! This module only reads what the files say; whether a tokenizer can be converted is decided by
//! the caller.

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
    /// The special tokens the post-processor's `TemplateProcessing` puts before and after a
    /// single sequence (what decides whether BOS/EOS are added), when it has one.
    pub template_ends: Option<TemplateEnds>,
}

/// The special tokens around `$A` in a `TemplateProcessing`'s `single` template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateEnds {
    pub first: Option<String>,
    pub last: Option<String>,
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
        template_ends: template_ends(root.get("post_processor")),
    })
}

/// The first `TemplateProcessing` (alone or in a `Sequence`) whose `single` template has more
/// than one item, as llama.cpp's converter reads it.
fn template_ends(post: Option<&Value>) -> Option<TemplateEnds> {
    let post = post.filter(|p| !p.is_null())?;
    let processors = match post.get("processors").and_then(Value::as_array) {
        Some(list) => list.iter().collect::<Vec<_>>(),
        None => vec![post],
    };
    processors.into_iter().find_map(|p| {
        if p.get("type").and_then(Value::as_str) != Some("TemplateProcessing") {
            return None;
        }
        let single = p.get("single").and_then(Value::as_array)?;
        if single.len() < 2 {
            return None;
        }
        let special = |item: &Value| {
            item.get("SpecialToken")
                .and_then(|s| s.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Some(TemplateEnds {
            first: special(&single[0]),
            last: special(&single[single.len() - 1]),
        })
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
    fn reads_the_post_processors_template_ends() {
        let post = r#", "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel"},
            {"type": "TemplateProcessing", "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]}]}"#;
        let t = parse(&file(r#"{"type": "BPE", "vocab": {"a": 0}}"#, post)).unwrap();
        assert_eq!(
            t.template_ends,
            Some(TemplateEnds {
                first: Some("<s>".into()),
                last: None
            })
        );
        let t = parse(&file(r#"{"type": "BPE", "vocab": {"a": 0}}"#, "")).unwrap();
        assert_eq!(t.template_ends, None);
    }
}
