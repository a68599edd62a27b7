//! Chat templates and special tokens (issue 16): what llq writes for a Hugging Face chat folder
//! equals what llama.cpp's converter (gguf-py's SpecialVocab) writes; the chat prompt llq
//! builds from a file's template equals the one llama.cpp's tool chain builds (Python Jinja2
//! through llama-cpp-python, and llama.cpp's own llama_chat_apply_template where its built-in
//! formats cover the template); llama.cpp ends generation on exactly the tokens llq does.
//!
//! The folders are the tiny fixtures with the token configuration files of Meta's Llama 2 chat
//! and Llama 3.1 Instruct repositories (fixtures/chat/, written by
//! fixtures/gen/generate_chat_configs.py).

use crate::common::{fixture, llq, llq_fails, llq_ok, python, root, run_py, s};
use llq_formats::gguf::{GgufFile, Value};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// A copy of `base` (a tiny fixture's hf folder) with fixtures/chat/`config`'s files over it;
/// `config-eos.json` is merged into config.json.
fn chat_folder(dir: &Path, base: &Path, config: &str) -> PathBuf {
    let out = dir.join(config);
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(base).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, out.join(p.file_name().unwrap())).unwrap();
    }
    for e in std::fs::read_dir(root().join("fixtures/chat").join(config)).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() == "config-eos.json" {
            let mut c: Json =
                serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
            let extra: Json = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            std::fs::write(out.join("config.json"), c.to_string()).unwrap();
        } else {
            std::fs::copy(&p, out.join(p.file_name().unwrap())).unwrap();
        }
    }
    out
}

fn llama2_chat(dir: &Path) -> PathBuf {
    chat_folder(dir, &fixture("hf"), "llama2-chat")
}

fn llama31_instruct(dir: &Path) -> PathBuf {
    chat_folder(
        dir,
        &root().join("fixtures/tiny-llama3/hf"),
        "llama3.1-instruct",
    )
}

fn convert(src: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["convert", s(src), "-o", s(out), "-t", "f16", "--quiet"];
    args.extend(extra);
    llq_ok(&args);
}

/// A key's value as JSON (the form gguf-py's `contents()` gives).
fn json_of(v: &Value) -> Json {
    match v {
        Value::U32(x) => Json::from(*x),
        Value::Bool(b) => Json::from(*b),
        Value::String(t) => Json::from(t.clone()),
        other => panic!("unexpected value {other:?}"),
    }
}

/// Every key gguf-py's SpecialVocab writes for `folder` is in llq's file with the same value.
/// llq writes more in a few places, each named: the unknown id of a SentencePiece model (from
/// its tokenizer.model, which SpecialVocab does not read), end of turn / end of message (which
/// llama.cpp otherwise guesses at load time) and add_eos_token (llama.cpp's default, false);
/// it leaves out add_sep_token (a guess from tokenizer.json's pair template, which llama.cpp
/// uses only for models with a separator token).
fn assert_keys_match_special_vocab(python: &Path, folder: &Path, gguf: &Path, merges: bool) {
    let file = GgufFile::open(gguf).unwrap();
    let tokens = match file.get("tokenizer.ggml.tokens") {
        Some(Value::Array(a)) => a.len(),
        _ => panic!("no tokens"),
    };
    let scratch = gguf.with_extension("special.gguf");
    let want: Json = serde_json::from_str(&run_py(
        python,
        "special_vocab.py",
        &[
            s(folder),
            &tokens.to_string(),
            if merges { "1" } else { "0" },
            s(&scratch),
        ],
    ))
    .unwrap();
    let want = want.as_object().unwrap();
    assert!(want.contains_key("tokenizer.chat_template"), "{want:?}");
    for (key, value) in want {
        if key == "tokenizer.ggml.add_sep_token" {
            assert!(file.get(key).is_none(), "llq does not write {key}");
            continue;
        }
        let ours = file
            .get(key)
            .unwrap_or_else(|| panic!("llq did not write {key}"));
        assert_eq!(&json_of(ours), value, "{key}");
    }
    let extra: Vec<&str> = file
        .metadata
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("tokenizer.") && !want.contains_key(*k))
        .filter(|k| !matches!(*k, "tokenizer.ggml.model" | "tokenizer.ggml.pre"))
        .filter(|k| !matches!(*k, "tokenizer.ggml.tokens" | "tokenizer.ggml.scores"))
        .filter(|k| !matches!(*k, "tokenizer.ggml.token_type" | "tokenizer.ggml.merges"))
        .collect();
    for k in extra {
        assert!(
            matches!(
                k,
                "tokenizer.ggml.unknown_token_id"
                    | "tokenizer.ggml.eot_token_id"
                    | "tokenizer.ggml.eom_token_id"
                    | "tokenizer.ggml.add_eos_token"
            ),
            "llq writes {k}, which llama.cpp's converter does not"
        );
    }
}

#[test]
fn hf_chat_folders_get_llama_cpps_keys() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let l2 = llama2_chat(dir.path());
    let l2_gguf = dir.path().join("l2.gguf");
    convert(&l2, &l2_gguf, &[]);
    assert_keys_match_special_vocab(&python, &l2, &l2_gguf, false);
    // added_tokens_decoder makes <unk> <s> </s> control tokens of score -1000, as llama.cpp's
    // converter does (its _create_vocab_sentencepiece).
    let file = GgufFile::open(&l2_gguf).unwrap();
    let (Some(Value::Array(types)), Some(Value::Array(scores))) = (
        file.get("tokenizer.ggml.token_type"),
        file.get("tokenizer.ggml.scores"),
    ) else {
        panic!("no token types or scores")
    };
    let types = types.to_json();
    let scores = scores.to_json();
    for i in 0..3 {
        assert_eq!(types[i], 3, "token {i} is a control token");
        assert_eq!(scores[i], -1000.0, "token {i}'s score");
    }
    assert_eq!(types[3], 6, "the byte pieces keep their type");

    let l3 = llama31_instruct(dir.path());
    let l3_gguf = dir.path().join("l3.gguf");
    convert(&l3, &l3_gguf, &[]);
    assert_keys_match_special_vocab(&python, &l3, &l3_gguf, true);
    let file = GgufFile::open(&l3_gguf).unwrap();
    let id = |k: &str| file.get(k).and_then(Value::as_u64);
    // tokenizer_config.json's <|eot_id|> wins over config.json's list, as in llama.cpp.
    assert_eq!(id("tokenizer.ggml.eos_token_id"), Some(521));
    assert_eq!(id("tokenizer.ggml.eot_token_id"), Some(521));
    assert_eq!(id("tokenizer.ggml.eom_token_id"), Some(520));
}

#[test]
fn chat_prompts_and_stop_tokens_match_llama_cpp() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let l2 = dir.path().join("l2.gguf");
    let l3 = dir.path().join("l3.gguf");
    let meta2 = dir.path().join("meta2.gguf");
    let meta3 = dir.path().join("meta3.gguf");
    convert(&llama2_chat(dir.path()), &l2, &[]);
    convert(&llama31_instruct(dir.path()), &l3, &[]);
    convert(&fixture("meta"), &meta2, &["--chat-template", "llama2"]);
    let meta = root().join("fixtures/tiny-llama3/meta");
    convert(&meta, &meta3, &["--chat-template", "llama3"]);
    // Whether llama.cpp's built-in formats cover the template: Llama 3.1's adds a dated
    // system header that llama_chat_apply_template's "llama3" format does not write; and the
    // built-in formats trim each message where Llama 2's template trims only the whole turn.
    for (gguf, capi_covers) in [(&l2, true), (&l3, false), (&meta2, true), (&meta3, true)] {
        for (system, user) in [
            ("", "Hello there!"),
            ("Be brief.", "Who are you?"),
            ("", "  spaced  "),
        ] {
            let want: Json =
                serde_json::from_str(&run_py(&python, "chat_prompt.py", &[s(gguf), system, user]))
                    .unwrap();
            let mut args = vec!["tokenize", s(gguf), "--chat", "-p", user, "--json"];
            if !system.is_empty() {
                args.extend(["--system", system]);
            }
            let ours: Json = serde_json::from_str(&llq_ok(&args)).unwrap();
            let ours = &ours[0];
            assert_eq!(
                ours,
                &want["jinja"],
                "{} {system:?} {user:?}",
                gguf.display()
            );
            if !capi_covers {
                assert_ne!(ours, &want["capi"], "{}: the C API differs", gguf.display());
            } else if user == user.trim() {
                assert_eq!(ours, &want["capi"], "{} (C API)", gguf.display());
            }
        }
        let want: Json =
            serde_json::from_str(&run_py(&python, "chat_prompt.py", &[s(gguf), "", "x"])).unwrap();
        let tok = llq::Tokenizer::from_gguf(&GgufFile::open(gguf).unwrap()).unwrap();
        let ours: Vec<u32> = (0..tok.n_vocab() as u32)
            .filter(|&i| tok.is_eog(i))
            .collect();
        let eog: Vec<u32> = serde_json::from_value(want["eog"].clone()).unwrap();
        assert_eq!(ours, eog, "{}: tokens that end generation", gguf.display());
    }
    // A chat run stops by itself or after -n tokens, and says how fast it went.
    let out = llq(&[
        "run",
        s(&l3),
        "--chat",
        "-p",
        "Hi",
        "-n",
        "4",
        "--temp",
        "0",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("generation:"));
}

#[test]
fn bad_chat_templates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let src = fixture("meta");
    let empty = dir.path().join("empty.jinja");
    std::fs::write(&empty, " \n").unwrap();
    let binary = dir.path().join("binary.jinja");
    std::fs::write(&binary, b"{{ x }}\xff").unwrap();
    for (arg, needle) in [
        (s(&empty), "empty"),
        (s(&binary), "UTF-8"),
        (
            "llama9",
            "nor a built-in template (llama2, llama3, llama3.1)",
        ),
    ] {
        let args = ["convert", s(&src), "-o", s(&out), "--chat-template", arg];
        llq_fails(&args, needle);
        assert!(!out.exists(), "{arg}: no output after an error");
    }
    // A model without a template cannot chat, and says why.
    let plain = dir.path().join("plain.gguf");
    convert(&src, &plain, &[]);
    llq_fails(
        &["run", s(&plain), "--chat", "-p", "Hi"],
        "has no chat template",
    );
}
