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

/// `llq quantize MODEL --imatrix DAT` to each of `types` in a fresh folder `out`, then
/// `tests/py/llama_quantize_imatrix.py`, which quantizes MODEL with llama.cpp's
/// llama_model_quantize and the same file and fails unless every tensor's bytes are equal.
pub fn quantize_with_imatrix_like_llama_cpp(
    python: &Path,
    model: &Path,
    dat: &Path,
    out: &Path,
    types: &[&str],
) {
    std::fs::create_dir_all(out).unwrap();
    let mut args = vec![s(model), s(dat), s(out)];
    for &ty in types {
        let file = out.join(format!("{ty}.gguf"));
        llq_ok(&[
            "quantize",
            s(model),
            s(&file),
            ty,
            "--imatrix",
            s(dat),
            "--quiet",
        ]);
        args.push(ty);
    }
    println!("{}", run_py(python, "llama_quantize_imatrix.py", &args));
}

/// A file of little-endian f32 values.
pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// max |a_i − b_i| of two equally long vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "different lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// llama.cpp's logits (every position) for `ids` on `gguf`, through
/// `tests/py/llama3_logits.py`; `scratch` is a file path it may write.
pub fn llama_cpp_logits(python: &Path, gguf: &Path, ids: &[u32], scratch: &Path) -> Vec<f32> {
    let mut args = vec![s(gguf).to_string(), s(scratch).to_string()];
    args.extend(ids.iter().map(|i| i.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_py(python, "llama3_logits.py", &args);
    read_f32(scratch)
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

/// The corpus split of fixtures/README.md, "Corpus split": (training text, held-out text), cut
/// after the first newline at or after 90 % of the code points. `None` (with a SKIPPED line)
/// without LLQ_SHARED.
pub fn corpus_split() -> Option<(String, String)> {
    let corpus = std::fs::read_to_string(shared()?.join("corpus/wikitext-2-test.txt")).unwrap();
    let chars: Vec<char> = corpus.chars().collect();
    let t = chars.len() * 9 / 10;
    let newline = t + chars[t..].iter().position(|&c| c == '\n').unwrap();
    Some((
        chars[..newline + 1].iter().collect(),
        chars[newline + 1..].iter().collect(),
    ))
}

/// The held-out 10 % of the corpus (see [`corpus_split`]).
pub fn heldout_text() -> Option<String> {
    corpus_split().map(|(_, heldout)| heldout)
}
