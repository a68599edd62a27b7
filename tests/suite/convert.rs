//! `llq convert` on the fixture model, checked against independent references: the torch
//! tensors' hashes dumped by the generator, gguf-py, gguf-rs and sentencepiece.

use crate::common::{fixture, llq_ok, python, run_py, s, shared};
use llq_formats::gguf::{Array, GgufFile, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const LAYOUTS: [&str; 3] = ["meta", "meta-2shard", "hf"];

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn convert(src: &str, dir: &Path, ty: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{src}-{ty}.gguf"));
    let (src, out_s) = (fixture(src), out.clone());
    let mut args = vec!["convert", s(&src), "-o", s(&out_s), "--type", ty, "--quiet"];
    args.extend(extra);
    llq_ok(&args);
    out
}

fn reference_tensors() -> serde_json::Map<String, Json> {
    let text = std::fs::read_to_string(fixture("reference/tensors.json")).unwrap();
    let json: Json = serde_json::from_str(&text).unwrap();
    json["tensors"].as_object().unwrap().clone()
}

#[test]
fn every_layout_converts_to_the_torch_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference_tensors();
    for ty in ["bf16", "f32"] {
        let files: Vec<GgufFile> = LAYOUTS
            .iter()
            .map(|l| GgufFile::open(&convert(l, dir.path(), ty, &[])).unwrap())
            .collect();
        assert_eq!(files[0].tensors.len(), reference.len());
        for t in &files[0].tensors {
            let want = &reference[&t.name];
            let shape: Vec<u64> = want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(t.dims, shape, "{}", t.name);
            // Norms are kept F32; everything else has the requested type.
            let key = if t.ty == llq_types::GgmlType::BF16 {
                "sha256_bf16"
            } else {
                "sha256_f32"
            };
            let data = files[0].tensor_data(t);
            assert_eq!(sha256(data), want[key].as_str().unwrap(), "{ty} {}", t.name);
            for (layout, other) in LAYOUTS.iter().zip(&files).skip(1) {
                let o = other.tensor(&t.name).unwrap();
                assert_eq!(other.tensor_data(o), data, "{layout} {ty} {}", t.name);
            }
        }
    }
}

/// Every key and tensor as `llq inspect --json` reports them vs gguf-py's reading of the file.
fn assert_inspect_matches_gguf_py(python: &Path, file: &Path) {
    let ours: Json = serde_json::from_str(&llq_ok(&["inspect", "--json", s(file)])).unwrap();
    let theirs: Json = serde_json::from_str(&run_py(python, "gguf_dump.py", &[s(file)])).unwrap();
    assert_eq!(ours["version"], theirs["version"]);
    assert_eq!(ours["alignment"], theirs["alignment"]);
    assert_eq!(ours["data_offset"], theirs["data_offset"]);
    let (ours_kv, theirs_kv) = (
        ours["metadata"].as_array().unwrap(),
        theirs["kv"].as_array().unwrap(),
    );
    assert_eq!(ours_kv.len(), theirs_kv.len(), "{}", file.display());
    for (a, b) in ours_kv.iter().zip(theirs_kv) {
        assert_eq!(a["key"], b["key"]);
        assert_eq!(a["type"], b["type"], "{}", a["key"]);
        assert_eq!(a.get("element_type"), b.get("elem_type"), "{}", a["key"]);
        assert_json_close(&a["value"], &b["value"], a["key"].as_str().unwrap());
    }
    let gguf = GgufFile::open(file).unwrap();
    let (ours_t, theirs_t) = (
        ours["tensors"].as_array().unwrap(),
        theirs["tensors"].as_array().unwrap(),
    );
    assert_eq!(ours_t.len(), theirs_t.len());
    for ((a, b), t) in ours_t.iter().zip(theirs_t).zip(&gguf.tensors) {
        assert_eq!(a["name"], b["name"]);
        assert_eq!(a["shape"], b["shape"], "{}", a["name"]);
        assert_eq!(a["type_id"], b["type"], "{}", a["name"]);
        assert_eq!(a["offset"], b["offset"], "{}", a["name"]);
        assert_eq!(a["bytes"], b["n_bytes"], "{}", a["name"]);
        assert_eq!(
            sha256(gguf.tensor_data(t)),
            b["sha256"].as_str().unwrap(),
            "{}",
            a["name"]
        );
    }
}

/// JSON equality where floats may differ in the last bit of their decimal rendering.
fn assert_json_close(a: &Json, b: &Json, what: &str) {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x as f32).to_bits() == (y as f32).to_bits() || x == y,
                "{what}: {x} vs {y}"
            );
        }
        (Json::Array(x), Json::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{what}");
            for (x, y) in x.iter().zip(y) {
                assert_json_close(x, y, what);
            }
        }
        _ => assert_eq!(a, b, "{what}"),
    }
}

const READ_BACK_TYPES: [&str; 5] = ["f32", "f16", "bf16", "q8_0", "q4_k_m"];

#[test]
fn gguf_py_reads_what_llq_writes() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for ty in READ_BACK_TYPES {
        let file = convert("meta", dir.path(), ty, &[]);
        assert_inspect_matches_gguf_py(&python, &file);
    }
}

/// gguf-rs (a Rust crate, no Python needed, so this always runs) reads every key, value and
/// tensor of llq's files as llq's reader does, with the same data offset and alignment.
#[test]
fn gguf_rs_reads_what_llq_writes() {
    let dir = tempfile::tempdir().unwrap();
    for ty in READ_BACK_TYPES {
        let file = convert("meta", dir.path(), ty, &[]);
        let ours = GgufFile::open(&file).unwrap();
        let mut container = gguf_rs::get_gguf_container_array_size(s(&file), u64::MAX).unwrap();
        let model = container.decode().unwrap();
        assert_eq!(model.get_version(), "v3", "{ty}");
        assert_eq!(model.num_tensor() as usize, ours.tensors.len(), "{ty}");
        assert_eq!(model.num_kv() as usize, ours.metadata.len(), "{ty}");
        assert_eq!(
            (model.data_offset(), model.alignment()),
            (ours.shards()[0].data_offset, ours.alignment),
            "{ty}"
        );
        for (key, value) in &ours.metadata {
            let theirs = model
                .metadata()
                .get(key)
                .unwrap_or_else(|| panic!("{ty}: gguf-rs has no {key}"));
            assert_json_close(&value.to_json(), theirs, &format!("{ty} {key}"));
        }
        for (a, b) in model.tensors().iter().zip(&ours.tensors) {
            assert_eq!(
                (&a.name, a.kind, a.offset, &a.shape),
                (&b.name, b.ty.id(), b.offset, &b.dims),
                "{ty}"
            );
            // gguf-rs 0.1.8 has no size for BF16 (it reports 1024 bytes for any BF16 tensor).
            if b.ty != llq_types::GgmlType::BF16 {
                assert_eq!(
                    a.size as usize,
                    ours.tensor_data(b).len(),
                    "{ty} {}",
                    b.name
                );
            }
        }
    }
}

#[test]
fn inspect_agrees_with_gguf_py_on_a_llama_cpp_file() {
    let (Some(python), Some(shared)) = (python(), shared()) else {
        return;
    };
    assert_inspect_matches_gguf_py(&python, &shared.join("gguf/llama-2-tiny-random.gguf"));
}

/// The tokenizer keys hold exactly what sentencepiece reports for the model's pieces.
fn assert_tokenizer_keys_match(python: &Path, kv: &[(String, Value)], tokenizer: &Path) {
    let spm: Json = serde_json::from_str(&run_py(python, "spm_dump.py", &[s(tokenizer)])).unwrap();
    let pieces = spm["pieces"].as_array().unwrap();
    let get = |k: &str| {
        kv.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let (
        Value::Array(Array::String(tokens)),
        Value::Array(Array::F32(scores)),
        Value::Array(Array::I32(types)),
    ) = (
        get("tokenizer.ggml.tokens"),
        get("tokenizer.ggml.scores"),
        get("tokenizer.ggml.token_type"),
    )
    else {
        panic!("tokenizer arrays have the wrong types");
    };
    assert_eq!(tokens.len(), pieces.len());
    for (i, p) in pieces.iter().enumerate() {
        assert_eq!(tokens[i], p[0].as_str().unwrap(), "piece {i}");
        assert_eq!(
            scores[i].to_bits() as u64,
            p[1].as_u64().unwrap(),
            "score {i}"
        );
        // llama.cpp's token types use SentencePiece's numbering.
        let kind = match p[2].as_str().unwrap() {
            "normal" => 1,
            "unknown" => 2,
            "control" => 3,
            "user_defined" => 4,
            "unused" => 5,
            "byte" => 6,
            other => panic!("unknown piece type {other}"),
        };
        assert_eq!(types[i], kind, "type of piece {i}");
    }
    for (key, field) in [("bos", "bos_id"), ("eos", "eos_id"), ("unknown", "unk_id")] {
        let id = get(&format!("tokenizer.ggml.{key}_token_id"));
        assert_eq!(
            *id,
            Value::U32(spm[field].as_u64().unwrap() as u32),
            "{key}"
        );
    }
}

#[test]
fn tokenizer_metadata_equals_sentencepiece() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = GgufFile::open(&convert("hf", dir.path(), "f16", &[])).unwrap();
    assert_tokenizer_keys_match(&python, &file.metadata, &fixture("hf/tokenizer.model"));
}

#[test]
fn llama2_tokenizer_metadata_equals_sentencepiece() {
    let (Some(python), Some(shared)) = (python(), shared()) else {
        return;
    };
    let path = shared.join("tokenizers/llama2/tokenizer.model");
    let spm = llq_formats::sentencepiece::load(&path).unwrap();
    assert_tokenizer_keys_match(&python, &llq::sentencepiece_keys(&spm), &path);
}

#[test]
fn output_is_identical_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    for ty in ["bf16", "q4_k_m"] {
        let outputs: Vec<Vec<u8>> = ["1", "2", "4"]
            .iter()
            .map(|threads| {
                let out = dir.path().join(format!("{ty}-{threads}.gguf"));
                let src = fixture("meta-2shard");
                llq_ok(&[
                    "convert",
                    s(&src),
                    "-o",
                    s(&out),
                    "--type",
                    ty,
                    "--quiet",
                    "--threads",
                    threads,
                ]);
                std::fs::read(out).unwrap()
            })
            .collect();
        assert!(
            outputs.windows(2).all(|w| w[0] == w[1]),
            "{ty} differs by thread count"
        );
    }
}
