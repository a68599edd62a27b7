//! Helpers of llq's integration tests: the built binary, the fixture models, and what several
//! modules compare against. The references themselves (and the skip-or-fail policy when one is
//! missing) come from `llq-testsupport`.

pub use llq_testsupport::{python, run_py, shared, workspace_root as root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A path inside `fixtures/tiny-llama/`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures/tiny-llama").join(rel)
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
/// `tests/py/llama3_logits.py` (KV cache in F32, as llq's); `scratch` is a file path it may
/// write.
pub fn llama_cpp_logits(python: &Path, gguf: &Path, ids: &[u32], scratch: &Path) -> Vec<f32> {
    let mut args = vec![s(gguf).to_string(), s(scratch).to_string()];
    args.extend(ids.iter().map(|i| i.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_py(python, "llama3_logits.py", &args);
    read_f32(scratch)
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The corpus split of fixtures/README.md, "Corpus split": (training text, held-out text), cut
/// after the first newline at or after 90 % of the code points. `None` (with a SKIPPED line)
/// without LLQ_SHARED (see `llq_testsupport::missing`).
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
