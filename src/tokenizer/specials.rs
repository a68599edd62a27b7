//! A vocabulary's special tokens, BOS/EOS flags and chat templates: what a GGUF says about them
//! beyond the token list, decided from a checkpoint's files the way llama.cpp's converter
//! (gguf-py's `SpecialVocab`) decides it, with end-of-turn and end-of-message written explicitly.

use llq_formats::sentencepiece::SpmModel;
use llq_formats::tokenizer_config::{ConfigTokenIds, NamedTemplate, TokenizerConfig};
use llq_formats::tokenizer_json::TemplateEnds;

/// The special tokens and chat templates of a vocabulary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Specials {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    /// End of turn (Llama 3 `<|eot_id|>`) and end of message (Llama 3.1 `<|eom_id|>`), which
    /// end generation too. llama.cpp's converter leaves them out and llama.cpp guesses them
    /// from token texts at load time, in hash-map order where several texts qualify (a Llama
    /// 3 file can get `<|end_of_text|>` as its end of turn); written here, they are certain.
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    /// The default template is named `default`; the others are written under their names.
    pub chat_templates: Vec<NamedTemplate>,
}

impl Specials {
    /// A Meta SentencePiece `tokenizer.model`: the ids its trainer spec names (−1 = none),
    /// BOS added, EOS not.
    pub fn of_sentencepiece(spm: &SpmModel) -> Specials {
        let id = |v: i32| u32::try_from(v).ok();
        let texts: Vec<&str> = spm.pieces.iter().map(|p| p.piece.as_str()).collect();
        Specials {
            bos: id(spm.bos_id),
            eos: id(spm.eos_id),
            unk: id(spm.unk_id),
            pad: id(spm.pad_id),
            ..Specials::turn_ends(&texts)
        }
    }

    /// Meta's Llama 3 tokens (tiktoken `tokenizer.model`): BOS `<|begin_of_text|>`, EOS
    /// `<|end_of_text|>`, as Meta's reference code and llama.cpp's converter use them.
    pub fn of_llama3(tokens: &[String]) -> Specials {
        let texts: Vec<&str> = tokens.iter().map(String::as_str).collect();
        Specials {
            bos: find(&texts, "<|begin_of_text|>"),
            eos: find(&texts, "<|end_of_text|>"),
            ..Specials::turn_ends(&texts)
        }
    }

    /// A Hugging Face folder, as gguf-py's `SpecialVocab` reads it: a token that
    /// tokenizer_config.json names (`bos_token`, …) is looked up among tokenizer.json's added
    /// tokens (`lookup`), config.json's integer ids fill what is still missing, and `fallback`
    /// (the SentencePiece model's own ids) what is missing after that. BOS/EOS flags are
    /// tokenizer_config.json's, else what tokenizer.json's post-processor adds around a single
    /// sequence, else BOS only; the chat templates are `templates` (see [`chat_templates`]).
    pub fn of_hugging_face(
        texts: &[&str],
        config: &TokenizerConfig,
        config_ids: &ConfigTokenIds,
        lookup: impl Fn(&str) -> Option<u32>,
        post: Option<&TemplateEnds>,
        templates: Vec<NamedTemplate>,
        fallback: &Specials,
    ) -> Specials {
        let named = |t: &Option<String>| t.as_deref().and_then(&lookup);
        let bos = named(&config.bos_token).or(config_ids.bos).or(fallback.bos);
        let eos = named(&config.eos_token).or(config_ids.eos).or(fallback.eos);
        let text = |id: Option<u32>| id.and_then(|i| texts.get(i as usize).copied());
        let post_first = post.and_then(|p| p.first.as_deref());
        let post_last = post.and_then(|p| p.last.as_deref());
        Specials {
            bos,
            eos,
            unk: named(&config.unk_token).or(fallback.unk),
            pad: named(&config.pad_token).or(config_ids.pad).or(fallback.pad),
            add_bos: config
                .add_bos_token
                .or(post_first.map(|first| Some(first) == text(bos)))
                .unwrap_or(true),
            add_eos: config
                .add_eos_token
                .or(post_last.map(|last| Some(last) == text(eos)))
                .unwrap_or(false),
            chat_templates: templates,
            ..Specials::turn_ends(texts)
        }
    }

    /// No ids, BOS added and EOS not (llama.cpp's defaults), end of turn and end of message
    /// found by their Llama 3 texts.
    fn turn_ends(texts: &[&str]) -> Specials {
        Specials {
            eot: find(texts, "<|eot_id|>"),
            eom: find(texts, "<|eom_id|>"),
            add_bos: true,
            ..Specials::default()
        }
    }

    /// Replace the default chat template (the named ones stay).
    pub fn set_default_template(&mut self, template: String) {
        self.chat_templates.retain(|t| t.name != "default");
        self.chat_templates.insert(
            0,
            NamedTemplate {
                name: "default".into(),
                template,
            },
        );
    }

    /// Every id, checked to be inside a vocabulary of `n` tokens.
    pub fn check_ids(&self, n: usize) -> Result<(), String> {
        for (what, id) in [
            ("BOS", self.bos),
            ("EOS", self.eos),
            ("unknown", self.unk),
            ("padding", self.pad),
        ] {
            if let Some(id) = id.filter(|&id| id as usize >= n) {
                return Err(format!(
                    "{what} token id {id} is outside the vocabulary of {n} tokens"
                ));
            }
        }
        Ok(())
    }
}

/// The last token with text `name` (llama.cpp's text map keeps the last of duplicates).
fn find(texts: &[&str], name: &str) -> Option<u32> {
    texts.iter().rposition(|t| *t == name).map(|i| i as u32)
}

/// The chat templates of a Hugging Face folder, as llama.cpp's converter finds them:
/// tokenizer_config.json's `chat_template` (a string, or named templates), else the text of
/// `chat_template.jinja` (with the files of `additional_chat_templates/` as named templates,
/// in name order), else `chat_template.json`'s `chat_template`.
pub fn chat_templates(
    config: &TokenizerConfig,
    jinja: Option<String>,
    additional: Vec<NamedTemplate>,
    json: Vec<NamedTemplate>,
) -> Vec<NamedTemplate> {
    if !config.chat_templates.is_empty() {
        return config.chat_templates.clone();
    }
    match jinja {
        Some(template) => std::iter::once(NamedTemplate {
            name: "default".into(),
            template,
        })
        .chain(additional)
        .collect(),
        None => json,
    }
}

/// Whether an added token's text marks it as a control token even when the file does not say
/// `special` (llama.cpp's converter: `<|…|>`, `<｜…｜>`, `<unused…>` and a few names).
pub fn looks_special(text: &str) -> bool {
    matches!(text, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (text.starts_with("<|") && text.ends_with("|>"))
        || (text.starts_with("<｜") && text.ends_with("｜>"))
        || (text.starts_with("<unused") && text.ends_with('>'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> TokenizerConfig {
        llq_formats::tokenizer_config::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn tokenizer_config_names_win_over_config_ids() {
        let texts = ["<s>", "</s>", "<|eot_id|>", "a"];
        let lookup = |t: &str| texts.iter().position(|x| *x == t).map(|i| i as u32);
        let c = config(r#"{"bos_token": "<s>", "eos_token": "<|eot_id|>"}"#);
        let ids = ConfigTokenIds {
            bos: Some(3),
            eos: Some(1),
            pad: Some(3),
        };
        let s = Specials::of_hugging_face(
            &texts,
            &c,
            &ids,
            lookup,
            None,
            Vec::new(),
            &Specials::default(),
        );
        assert_eq!(
            (s.bos, s.eos, s.pad, s.eot),
            (Some(0), Some(2), Some(3), Some(2))
        );
        assert!(s.add_bos && !s.add_eos);
    }

    #[test]
    fn flags_come_from_the_config_else_the_post_processor() {
        let texts = ["<s>", "</s>"];
        let lookup = |t: &str| texts.iter().position(|x| *x == t).map(|i| i as u32);
        let post = TemplateEnds {
            first: Some("</s>".into()),
            last: Some("</s>".into()),
        };
        let run = |c: &TokenizerConfig| {
            Specials::of_hugging_face(
                &texts,
                c,
                &ConfigTokenIds::default(),
                lookup,
                Some(&post),
                Vec::new(),
                &Specials::default(),
            )
        };
        let s = run(&config(r#"{"bos_token": "<s>", "eos_token": "</s>"}"#));
        assert!(!s.add_bos, "the post-processor's first token is not BOS");
        assert!(s.add_eos, "its last token is EOS");
        let s = run(&config(
            r#"{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true,
                "add_eos_token": false}"#,
        ));
        assert!(s.add_bos && !s.add_eos);
    }

    #[test]
    fn templates_from_the_config_else_the_files() {
        let t = |name: &str, text: &str| NamedTemplate {
            name: name.into(),
            template: text.into(),
        };
        let with = config(r#"{"chat_template": "C"}"#);
        let none = config("{}");
        assert_eq!(
            chat_templates(&with, Some("J".into()), vec![], vec![]),
            [t("default", "C")]
        );
        assert_eq!(
            chat_templates(&none, Some("J".into()), vec![t("tool", "T")], vec![]),
            [t("default", "J"), t("tool", "T")]
        );
        assert_eq!(
            chat_templates(&none, None, vec![], vec![t("default", "S")]),
            [t("default", "S")]
        );
    }

    #[test]
    fn special_looking_texts() {
        assert!(looks_special("<|eot_id|>"));
        assert!(looks_special("<unused12>"));
        assert!(!looks_special("<s>"));
        assert!(!looks_special("hello"));
    }
}
