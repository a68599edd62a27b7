//! Shared helpers for llq's integration tests: the built binary, the fixture model, and the
//! independent references reached through environment variables. A test whose reference is
//! missing prints a `SKIPPED:` line saying which variable to set, and passes.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path inside `fixtures/tiny-llama/`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures/tiny-llama").join(rel)
}

fn env_path(var: &str, what: &str) -> Option<PathBuf> {
    let value = std::env::var_os(var).map(PathBuf::from);
    if value.is_none() {
        println!("SKIPPED: {var} not set ({what}); scripts/test.sh sets it");
    }
    value
}

/// A python with the reference packages (gguf, numpy, sentencepiece, llama-cpp-python).
pub fn python() -> Option<PathBuf> {
    env_path("LLQ_PYTHON", "python with the reference packages")
}

/// The shared data folder (corpus, tokenizers, a llama.cpp-written GGUF).
pub fn shared() -> Option<PathBuf> {
    env_path("LLQ_SHARED", "the shared data folder")
}

/// Run the llq binary.
pub fn llq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llq"))
        .args(args)
        .output()
        .expect("run llq")
}

/// Run llq and insist it succeeded; returns stdout.
pub fn llq_ok(args: &[&str]) -> String {
    let out = llq(args);
    assert!(
        out.status.success(),
        "llq {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Run llq and insist it failed with `needle` in its stderr; returns its output.
pub fn llq_fails(args: &[&str], needle: &str) -> Output {
    let out = llq(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "llq {args:?} should fail");
    assert!(
        stderr.contains(needle),
        "llq {args:?}: stderr lacks {needle:?}: {stderr}"
    );
    out
}

/// Run `tests/py/<script>` with the reference python; returns stdout, fails with its stderr.
pub fn run_py(python: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(root().join("tests/py").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The held-out 10 % of the corpus (fixtures/README.md, "Corpus split"): the text after the
/// first newline at or after 90 % of the code points. `None` (with a SKIPPED line) without
/// LLQ_SHARED.
pub fn heldout_text() -> Option<String> {
    let corpus = std::fs::read_to_string(shared()?.join("corpus/wikitext-2-test.txt")).unwrap();
    let chars: Vec<char> = corpus.chars().collect();
    let t = chars.len() * 9 / 10;
    let newline = t + chars[t..].iter().position(|&c| c == '\n').unwrap();
    Some(chars[newline + 1..].iter().collect())
}
