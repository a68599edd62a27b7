//! The llama2 SentencePiece model as parsed by llq, compared piece by piece with what the
//! reference `sentencepiece` Python package reads from the same file.
//! Needs LLQ_PYTHON (an interpreter with `sentencepiece`) and LLQ_SHARED (the shared folder).

use llq_formats::sentencepiece;
use llq_testsupport::{python, shared};
use llq_types::TokenType;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn python_dump(python: &Path, model: &Path) -> Value {
    let script = llq_testsupport::workspace_root().join("tests/py/spm_dump.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(model)
        .output()
        .expect("run LLQ_PYTHON");
    assert!(
        out.status.success(),
        "spm_dump.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("spm_dump.py prints JSON")
}

/// The name spm_dump.py uses for a piece type.
fn type_name(kind: TokenType, tells_user_defined: bool) -> &'static str {
    match kind {
        TokenType::Normal => "normal",
        TokenType::Unknown => "unknown",
        TokenType::Control => "control",
        TokenType::UserDefined if tells_user_defined => "user_defined",
        TokenType::UserDefined => "normal",
        TokenType::Unused => "unused",
        TokenType::Byte => "byte",
    }
}

/// Parse `model_path` and check it against the Python reference; returns our parse.
fn compare_with_python(python: &Path, model_path: &Path) -> sentencepiece::SpmModel {
    let model = sentencepiece::load(model_path).expect("tokenizer parses");
    let reference = python_dump(python, model_path);

    let tells_user_defined = reference["tells_user_defined"] == Value::Bool(true);
    let expected = reference["pieces"].as_array().expect("pieces array");
    assert_eq!(model.pieces.len(), expected.len());
    for (id, (piece, want)) in model.pieces.iter().zip(expected).enumerate() {
        let got = serde_json::json!([
            piece.piece,
            piece.score.to_bits(),
            type_name(piece.kind, tells_user_defined)
        ]);
        assert_eq!(&got, want, "piece {id}");
    }

    for (field, ours) in [
        ("unk_id", model.unk_id),
        ("bos_id", model.bos_id),
        ("eos_id", model.eos_id),
        ("pad_id", model.pad_id),
    ] {
        assert_eq!(reference[field].as_i64(), Some(i64::from(ours)), "{field}");
    }

    // Settings Python does not expose, checked through the behaviour they cause.
    let probe = &reference["probe"];
    assert_eq!(
        probe["dummy_prefix"].as_bool(),
        Some(model.add_dummy_prefix)
    );
    assert_eq!(
        probe["collapses_spaces"].as_bool(),
        Some(model.remove_extra_whitespaces)
    );
    assert_eq!(
        probe["byte_pieces_for_unknown"].as_bool(),
        Some(model.byte_fallback)
    );
    model
}

#[test]
fn llama2_matches_python_sentencepiece() {
    let (Some(python), Some(shared)) = (python(), shared()) else {
        return;
    };
    let model = compare_with_python(&python, &shared.join("tokenizers/llama2/tokenizer.model"));
    assert_eq!(model.pieces.len(), 32000);
    assert_eq!(model.pad_id, -1, "llama2 has no pad piece");
    assert_eq!(model.model_type, 2, "llama2 is a BPE model");
    assert!(model.byte_fallback);
}

/// The tokenizer trained for the tiny-llama fixture.
#[test]
fn tiny_llama_fixture_matches_python_sentencepiece() {
    let Some(python) = python() else {
        return;
    };
    let path = llq_testsupport::workspace_root().join("fixtures/tiny-llama/hf/tokenizer.model");
    compare_with_python(&python, &path);
}
