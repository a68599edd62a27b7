//! `llq meta` (issue 16, part 4): a copy with edited key/values whose tensors are the
//! original's bytes (as gguf-py reads both), which llama.cpp loads with the new template;
//! keys that define the file are refused, and nothing is written then.

use crate::common::{fixture, llq_fails, llq_ok, python, run_py, s};
use serde_json::Value as Json;
use std::path::Path;

fn dump(python: &Path, gguf: &Path) -> Json {
    serde_json::from_str(&run_py(python, "gguf_dump.py", &[s(gguf)])).unwrap()
}

fn key<'a>(d: &'a Json, k: &str) -> Option<&'a Json> {
    d["kv"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == k)
        .map(|e| &e["value"])
}

#[test]
fn edited_copies_keep_every_tensor_byte() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.gguf");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&src),
        "-t",
        "q4_k_m",
        "--quiet",
    ]);
    let out = dir.path().join("out.gguf");
    llq_ok(&[
        "meta",
        s(&src),
        "-o",
        s(&out),
        "--set",
        "llama.context_length=4096",
        "--set",
        "llq.test=f32:0.5",
        "--set-str",
        "general.name=edited",
        "--delete",
        "tokenizer.ggml.add_eos_token",
        "--chat-template",
        "llama2",
    ]);
    let (before, after) = (dump(&python, &src), dump(&python, &out));
    assert_eq!(
        before["tensors"], after["tensors"],
        "names, shapes, types, offsets, sha256"
    );
    assert_eq!(key(&after, "llama.context_length"), Some(&Json::from(4096)));
    assert_eq!(key(&after, "llq.test"), Some(&Json::from(0.5)));
    assert_eq!(key(&after, "general.name"), Some(&Json::from("edited")));
    assert_eq!(key(&after, "tokenizer.ggml.add_eos_token"), None);
    let template = key(&after, "tokenizer.chat_template")
        .unwrap()
        .as_str()
        .unwrap();
    assert!(template.contains("[INST]"));
    // llama.cpp reads the new template and renders a prompt with it.
    let prompt: Json =
        serde_json::from_str(&run_py(&python, "chat_prompt.py", &[s(&out), "", "Hi"])).unwrap();
    assert!(!prompt["jinja"].as_array().unwrap().is_empty());
}

#[test]
fn file_defining_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.gguf");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&src),
        "-t",
        "q8_0",
        "--quiet",
    ]);
    let out = dir.path().join("out.gguf");
    for (args, needle) in [
        (
            ["--set", "general.architecture=gpt2"],
            "general.architecture cannot be changed",
        ),
        (
            ["--delete", "general.alignment"],
            "general.alignment cannot be changed",
        ),
        (
            ["--set", "llama.block_count=many"],
            "\"many\" is not a UINT32",
        ),
        (["--set", "llq.new=3"], "a new key needs its type"),
        (["--set-str", "llama.block_count=4"], "not a string"),
    ] {
        llq_fails(
            &[&["meta", s(&src), "-o", s(&out)][..], &args[..]].concat(),
            needle,
        );
        assert!(!out.exists(), "{args:?}: nothing written");
    }
    // A split input stays split.
    let meta = fixture("meta");
    let split = dir.path().join("split.gguf");
    let args = [
        "convert",
        s(&meta),
        "-o",
        s(&split),
        "-t",
        "q8_0",
        "--quiet",
    ];
    llq_ok(&[&args[..], &["--split-max-tensors", "20"]].concat());
    let first = dir.path().join("split-00001-of-00002.gguf");
    let edited = dir.path().join("edited.gguf");
    llq_ok(&[
        "meta",
        s(&first),
        "-o",
        s(&edited),
        "--set-str",
        "general.name=x",
    ]);
    assert!(dir.path().join("edited-00002-of-00002.gguf").exists());
    let text = llq_ok(&["meta", s(&dir.path().join("edited-00001-of-00002.gguf"))]);
    assert!(
        text.contains("general.name") && text.contains("\"x\""),
        "{text}"
    );
}
