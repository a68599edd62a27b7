//! Chat templates: the Meta templates `--chat-template` can name, and rendering a conversation
//! with a model's template the way transformers' `apply_chat_template` does (Jinja through
//! minijinja, with the Python behaviour HF templates expect: `.strip()` and friends, trimmed
//! blocks, `raise_exception`, `strftime_now`, and Python's `json.dumps` as `tojson`).

use super::Tokenizer;
use crate::error::{Error, Result};
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, ErrorKind};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// A chat template shipped with llq, for checkpoints whose folder has none (Meta's).
pub struct Builtin {
    pub name: &'static str,
    /// Where the text comes from.
    pub source: &'static str,
    pub text: &'static str,
}

/// The built-in templates, each the `chat_template` of a Meta model's official
/// `tokenizer_config.json`.
pub const BUILTINS: [Builtin; 3] = [
    Builtin {
        name: "llama2",
        source: "meta-llama/Llama-2-7b-chat-hf, tokenizer_config.json (same in 13b/70b-chat-hf)",
        text: include_str!("templates/llama2-chat.jinja"),
    },
    Builtin {
        name: "llama3",
        source: "meta-llama/Meta-Llama-3-8B-Instruct, tokenizer_config.json",
        text: include_str!("templates/llama3-instruct.jinja"),
    },
    Builtin {
        name: "llama3.1",
        source: "meta-llama/Llama-3.1-8B-Instruct, tokenizer_config.json (llama.cpp keeps it as \
                 models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja)",
        text: include_str!("templates/llama3.1-instruct.jinja"),
    },
];

/// `--chat-template`'s value: a built-in name, else a file holding UTF-8 template text.
pub fn resolve(arg: &str) -> Result<String> {
    if let Some(b) = BUILTINS.iter().find(|b| b.name == arg) {
        return Ok(b.text.to_string());
    }
    let path = Path::new(arg);
    if !path.is_file() {
        let names: Vec<_> = BUILTINS.iter().map(|b| b.name).collect();
        return Err(Error::Usage(format!(
            "--chat-template {arg:?}: no such file, nor a built-in template ({})",
            names.join(", ")
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
    super::folder::utf8(path, bytes)
}

/// One turn of a conversation.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The conversation rendered with the model's chat template, the assistant's turn opened, as
/// tokens: the template's special-token texts become those tokens, and BOS is added only where
/// the template did not write it (llama.cpp's rule against a double BOS).
pub fn prompt_tokens(
    tok: &Tokenizer,
    conversation: &[Message],
) -> std::result::Result<Vec<u32>, String> {
    let template = tok
        .chat_template()
        .ok_or("has no chat template (tokenizer.chat_template); convert with --chat-template")?;
    let text_of = |id: u32| tok.piece(id).unwrap_or_default();
    let bos = text_of(tok.bos());
    let text = render(template, conversation, bos, text_of(tok.eos()), true)?;
    let template_wrote_bos = !bos.is_empty() && text.starts_with(bos);
    Ok(tok.encode_special(&text, tok.add_bos_default() && !template_wrote_bos))
}

/// The prompt text of `messages` under `template`, as transformers renders it: the context
/// holds `messages`, `add_generation_prompt`, `bos_token`, `eos_token` and `tools = none`.
pub fn render(
    template: &str,
    messages: &[Message],
    bos_token: &str,
    eos_token: &str,
    add_generation_prompt: bool,
) -> std::result::Result<String, String> {
    let env = environment();
    let t = env
        .template_from_str(template)
        .map_err(|e| format!("chat template does not parse: {e}"))?;
    t.render(minijinja::context! {
        messages => Value::from(minijinja::value::Serde(messages)),
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token,
        eos_token => eos_token,
        tools => Value::from(()),
        documents => Value::from(()),
    })
    .map_err(|e| format!("chat template failed: {e}"))
}

/// A Jinja environment set up as transformers' (`trim_blocks`, `lstrip_blocks`, loop
/// controls) with the Python string and dict methods HF templates call.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("static syntax"),
    );
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", |fmt: String| strftime_utc(&fmt, now_unix()));
    env.add_filter("tojson", tojson);
    env
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `strftime` of a UTC time for the directives templates use (%d %m %Y %y %b %B %a %A %H %M
/// %S %e %j %%), in the C locale.
fn strftime_utc(fmt: &str, unix: i64) -> std::result::Result<String, minijinja::Error> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let year_day = days - days_from_civil(y, 1, 1) + 1;
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next().ok_or_else(|| {
            minijinja::Error::new(ErrorKind::InvalidOperation, "strftime: lone % at the end")
        })?;
        let _ = match spec {
            'd' => write!(out, "{d:02}"),
            'e' => write!(out, "{d:2}"),
            'm' => write!(out, "{m:02}"),
            'Y' => write!(out, "{y}"),
            'y' => write!(out, "{:02}", y.rem_euclid(100)),
            'b' => write!(out, "{}", &MONTHS[m as usize - 1][..3]),
            'B' => write!(out, "{}", MONTHS[m as usize - 1]),
            'a' => write!(out, "{}", &weekday[..3]),
            'A' => write!(out, "{weekday}"),
            'H' => write!(out, "{:02}", secs / 3600),
            'M' => write!(out, "{:02}", secs / 60 % 60),
            'S' => write!(out, "{:02}", secs % 60),
            'j' => write!(out, "{year_day:03}"),
            '%' => write!(out, "%"),
            other => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("strftime: %{other} is not supported"),
                ))
            }
        };
    }
    Ok(out)
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a date (the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Python's `json.dumps(x, ensure_ascii=False)` (what transformers installs as `tojson`):
/// `", "` and `": "` separators, keys in insertion order, no HTML escaping; `indent=` honoured.
fn tojson(v: Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    let _: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut s = String::new();
    py_json(&mut s, &v, indent, 0)?;
    Ok(Value::from_safe_string(s))
}

fn py_json(
    out: &mut String,
    v: &Value,
    indent: Option<usize>,
    level: usize,
) -> std::result::Result<(), minijinja::Error> {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let separator = if indent.is_some() { "," } else { ", " };
    let string = |out: &mut String, s: &str| {
        out.push_str(&serde_json::to_string(s).expect("strings serialize"))
    };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            let _ = write!(out, "{v}");
        }
        ValueKind::String => string(out, v.as_str().unwrap_or("")),
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
            let is_map = v.kind() == ValueKind::Map;
            let items: Vec<Value> = v.try_iter()?.collect();
            let (open, close) = if is_map { ('{', '}') } else { ('[', ']') };
            out.push(open);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                newline(out, level + 1);
                if is_map {
                    string(out, &item.to_string());
                    out.push_str(": ");
                    py_json(out, &v.get_item(item)?, indent, level + 1)?;
                } else {
                    py_json(out, item, indent, level + 1)?;
                }
            }
            if !items.is_empty() {
                newline(out, level);
            }
            out.push(close);
        }
        _ => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("cannot serialize a {} to JSON", v.kind()),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn llama2_template_strips_and_wraps_the_system_prompt() {
        let out = render(
            BUILTINS[0].text,
            &[msg("system", "Be brief."), msg("user", "Hi  ")],
            "<s>",
            "</s>",
            true,
        )
        .unwrap();
        assert_eq!(out, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
        let e = render(
            BUILTINS[0].text,
            &[msg("assistant", "x")],
            "<s>",
            "</s>",
            true,
        );
        assert!(e.unwrap_err().contains("roles must alternate"));
    }

    #[test]
    fn llama3_template_adds_the_assistant_header() {
        let out = render(BUILTINS[1].text, &[msg("user", "Hi")], "<|bos|>", "", true).unwrap();
        assert_eq!(
            out,
            "<|bos|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn strftime_knows_the_common_directives() {
        // 2024-07-26 13:25:09 UTC was a Friday, day 208 of a leap year.
        let t = 1_722_000_309;
        assert_eq!(
            strftime_utc("%d %b %Y, %A %H:%M:%S %j %y %B %e %%", t).unwrap(),
            "26 Jul 2024, Friday 13:25:09 208 24 July 26 %"
        );
        assert!(strftime_utc("%Q", t).is_err());
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }

    #[test]
    fn tojson_is_pythons_json_dumps() {
        let env = environment();
        let t = env
            .template_from_str(
                r#"{% set v = {"b": [1, "x<y"], "a": none} %}{{ v | tojson }}|{{ v | tojson(indent=2) }}"#,
            )
            .unwrap();
        assert_eq!(
            t.render(minijinja::context! {}).unwrap(),
            "{\"b\": [1, \"x<y\"], \"a\": null}|{\n  \"b\": [\n    1,\n    \"x<y\"\n  ],\n  \"a\": null\n}"
        );
    }
}
