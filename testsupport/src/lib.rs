//! What every llq test suite shares: the independent references a test compares against
//! (reached through environment variables that `scripts/test.sh` sets), the policy for a
//! missing one, and seeded random data.
//!
//! A missing reference **fails** the test under CI (`CI` set to anything but `false`/`0`) or
//! with `LLQ_REQUIRE_REFERENCES=1` (which `scripts/test.sh` sets). Otherwise (a plain
//! `cargo test`) the test is skipped, and says so on the terminal: the line is written to the
//! process's stderr directly, past the test harness's output capture, so it shows even though
//! the test passes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod pth_writer;
mod rng;
pub use rng::Rng;

/// The workspace root (where `tests/py`, `fixtures` and `scripts` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testsupport sits in the workspace")
        .to_path_buf()
}

/// Whether a missing reference must fail the test rather than skip it.
pub fn references_required() -> bool {
    let set = |var: &str| {
        std::env::var(var)
            .map(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
            .unwrap_or(false)
    };
    set("CI") || set("LLQ_REQUIRE_REFERENCES")
}

/// Report a reference the test cannot run without: panics when references are required,
/// else prints a `SKIPPED:` line past the output capture.
pub fn missing(what: &str) {
    if references_required() {
        panic!("reference missing: {what} (CI or LLQ_REQUIRE_REFERENCES is set, so this fails; run scripts/test.sh)");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let line = format!("SKIPPED: {test}: {what}; scripts/test.sh provides it\n");
    // Past the harness's capture (which only takes print!/eprint!), so the user sees it.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The path in environment variable `var`, which must exist when set; `None` (after
/// [`missing`]) when unset.
pub fn env_path(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) => {
            let path = PathBuf::from(v);
            assert!(
                path.exists(),
                "{var}={} ({what}) does not exist",
                path.display()
            );
            Some(path)
        }
        None => {
            missing(&format!("{var} not set ({what})"));
            None
        }
    }
}

/// A python with the reference packages (gguf, numpy, sentencepiece, tiktoken, llama-cpp-python).
pub fn python() -> Option<PathBuf> {
    env_path("LLQ_PYTHON", "python with the reference packages")
}

/// ggml's own library (libggml-base.so from llama-cpp-python): the byte-exact quantizer.
pub fn ggml_lib() -> Option<PathBuf> {
    env_path("LLQ_GGML_LIB", "ggml's libggml-base.so")
}

/// The shared data folder (corpus, real tokenizers, a llama.cpp-written GGUF).
pub fn shared() -> Option<PathBuf> {
    env_path("LLQ_SHARED", "the shared data folder")
}

/// The reference python and ggml's library, or `None` if either is missing.
pub fn python_and_ggml() -> Option<(PathBuf, PathBuf)> {
    Some((python()?, ggml_lib()?))
}

/// Run `tests/py/<script>` with `python`; returns stdout, panics with stderr on failure.
pub fn run_py(python: &Path, script: &str, args: &[&str]) -> String {
    let path = workspace_root().join("tests/py").join(script);
    let out = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}
