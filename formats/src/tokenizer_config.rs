//! Hugging Face `tokenizer_config.json` and the special-token ids of `config.json`: what a
//! model folder says about its special tokens, BOS/EOS flags and chat templates. Only reads
//! what the files say; which source wins is the caller's decision.

use serde_json::Value;

/// What a `tokenizer_config.json` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenizerConfig {
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token`: token texts (a string or an
    /// `{"content": …}` object in the file).
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub unk_token: Option<String>,
    pub pad_token: Option<String>,
    pub add_bos_token: Option<bool>,
    pub add_eos_token: Option<bool>,
    /// `chat_template`: one string (named `default` here), or a list of `{name, template}`, in
    /// file order.
    pub chat_templates: Vec<NamedTemplate>,
    /// `added_tokens_decoder`: id → the token's text and whether it is special, in id order.
    pub added_tokens: Vec<DeclaredToken>,
}

/// A chat template and its name (`default` for the main one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedTemplate {
    pub name: String,
    pub template: String,
}

/// One entry of `added_tokens_decoder`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredToken {
    pub id: u32,
    pub content: String,
    pub special: bool,
}

/// The integer special-token ids of a `config.json` (a list, as Llama 3.1 gives for EOS, or
/// null counts as absent, as llama.cpp's converter treats them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigTokenIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
}

/// Parse a `tokenizer_config.json`.
pub fn parse(bytes: &[u8]) -> Result<TokenizerConfig, String> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    if !root.is_object() {
        return Err("is not a JSON object".into());
    }
    let token = |key: &str| -> Result<Option<String>, String> {
        match root.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_str()
                .or_else(|| v.get("content").and_then(Value::as_str))
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| format!("{key} {v} is neither a string nor {{\"content\": …}}")),
        }
    };
    let flag = |key: &str| -> Result<Option<bool>, String> {
        match root.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(format!("{key} {v} is not a boolean")),
        }
    };
    Ok(TokenizerConfig {
        bos_token: token("bos_token")?,
        eos_token: token("eos_token")?,
        unk_token: token("unk_token")?,
        pad_token: token("pad_token")?,
        add_bos_token: flag("add_bos_token")?,
        add_eos_token: flag("add_eos_token")?,
        chat_templates: chat_templates(root.get("chat_template"))?,
        added_tokens: added_tokens(root.get("added_tokens_decoder"))?,
    })
}

fn chat_templates(v: Option<&Value>) -> Result<Vec<NamedTemplate>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![NamedTemplate {
            name: "default".into(),
            template: s.clone(),
        }]),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let field = |k: &str| {
                    t.get(k)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| format!("chat_template[{i}] has no string \"{k}\""))
                };
                Ok(NamedTemplate {
                    name: field("name")?,
                    template: field("template")?,
                })
            })
            .collect(),
        Some(other) => Err(format!(
            "chat_template is neither a string nor a list of {{name, template}} ({})",
            kind(other)
        )),
    }
}

fn added_tokens(v: Option<&Value>) -> Result<Vec<DeclaredToken>, String> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(format!("added_tokens_decoder is {}", kind(other))),
    };
    let mut out =
        map.iter()
            .map(|(id, t)| {
                let id: u32 = id
                    .parse()
                    .map_err(|_| format!("added_tokens_decoder key {id:?} is not a token id"))?;
                let content = t.get("content").and_then(Value::as_str).ok_or_else(|| {
                    format!("added_tokens_decoder[{id}] has no \"content\" string")
                })?;
                let special = match t.get("special") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(v) => {
                        return Err(format!(
                            "added_tokens_decoder[{id}]: \"special\" {v} is not a boolean"
                        ))
                    }
                };
                Ok(DeclaredToken {
                    id,
                    content: content.to_string(),
                    special,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
    out.sort_by_key(|t| t.id);
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The integer `bos_token_id`, `eos_token_id` and `pad_token_id` of a `config.json`.
pub fn config_token_ids(bytes: &[u8]) -> Result<ConfigTokenIds, String> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let id = |key: &str| -> Result<Option<u32>, String> {
        match root.get(key) {
            None | Some(Value::Null) | Some(Value::Array(_)) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .map(Some)
                .ok_or_else(|| format!("{key} {v} is not a token id")),
        }
    };
    Ok(ConfigTokenIds {
        bos: id("bos_token_id")?,
        eos: id("eos_token_id")?,
        pad: id("pad_token_id")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tokens_flags_templates_and_declared_tokens() {
        let c = parse(
            br#"{"bos_token": "<s>", "eos_token": {"content": "</s>", "special": true},
                 "pad_token": null, "add_bos_token": true, "add_eos_token": false,
                 "chat_template": "{{ bos_token }}",
                 "added_tokens_decoder": {"2": {"content": "</s>", "special": true},
                                          "0": {"content": "<unk>"}}}"#,
        )
        .unwrap();
        assert_eq!(c.bos_token.as_deref(), Some("<s>"));
        assert_eq!(c.eos_token.as_deref(), Some("</s>"));
        assert_eq!((c.pad_token, c.unk_token), (None, None));
        assert_eq!(
            (c.add_bos_token, c.add_eos_token),
            (Some(true), Some(false))
        );
        assert_eq!(c.chat_templates.len(), 1);
        assert_eq!(c.chat_templates[0].name, "default");
        let ids: Vec<_> = c.added_tokens.iter().map(|t| (t.id, t.special)).collect();
        assert_eq!(ids, [(0, false), (2, true)]);
    }

    #[test]
    fn named_templates_keep_their_order() {
        let c = parse(
            br#"{"chat_template": [{"name": "tool_use", "template": "T"},
                                   {"name": "default", "template": "D"}]}"#,
        )
        .unwrap();
        let names: Vec<_> = c.chat_templates.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["tool_use", "default"]);
    }

    #[test]
    fn malformed_entries_are_refused_with_the_key() {
        for (bad, needle) in [
            (r#"{"chat_template": 3}"#, "chat_template"),
            (r#"{"chat_template": [{"name": "x"}]}"#, "\"template\""),
            (r#"{"add_bos_token": "yes"}"#, "add_bos_token"),
            (
                r#"{"added_tokens_decoder": {"x": {"content": "a"}}}"#,
                "\"x\"",
            ),
            (r#"{"bos_token": 1}"#, "bos_token"),
            ("[]", "object"),
        ] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn config_ids_ignore_lists_and_nulls() {
        let c = config_token_ids(
            br#"{"bos_token_id": 128000, "eos_token_id": [128001, 128009], "pad_token_id": null}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            ConfigTokenIds {
                bos: Some(128000),
                eos: None,
                pad: None
            }
        );
        assert!(config_token_ids(br#"{"bos_token_id": -1}"#).is_err());
    }
}
