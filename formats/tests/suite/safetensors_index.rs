//! Sharded checkpoints: `model.safetensors.index.json` and, when present, the tiny-llama fixture.

use llq_formats::safetensors;
use llq_formats::DType;
use std::collections::{BTreeMap, BTreeSet};

fn index_with(weight_map: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors.index.json");
    let text = format!(r#"{{"metadata": {{"total_size": 16}}, "weight_map": {weight_map}}}"#);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn reads_weight_map() {
    let (_dir, path) = index_with(
        r#"{"model.norm.weight": "model-00002-of-00002.safetensors",
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors"}"#,
    );
    let map = safetensors::read_index(&path).unwrap();
    assert_eq!(map.len(), 2);
    assert_eq!(map["model.norm.weight"], "model-00002-of-00002.safetensors");
}

#[test]
fn refuses_shards_outside_the_directory() {
    for shard in [
        "../model.safetensors",
        "sub/model.safetensors",
        "sub\\model.safetensors",
        "/etc/passwd",
        "..",
        "",
    ] {
        let (_dir, path) = index_with(&format!(r#"{{"w": {}}}"#, serde_json::json!(shard)));
        let err = safetensors::read_index(&path).unwrap_err().to_string();
        assert!(
            err.contains("index.json") && err.contains("plain file name"),
            "{err}"
        );
    }
}

#[test]
fn refuses_a_tensor_listed_twice() {
    let (_dir, path) = index_with(
        r#"{"w": "model-00001-of-00002.safetensors", "w": "model-00002-of-00002.safetensors"}"#,
    );
    let err = safetensors::read_index(&path).unwrap_err().to_string();
    assert!(err.contains("\"w\" twice"), "{err}");
}

#[test]
fn refuses_malformed_indexes() {
    let (_dir, path) = index_with(r#"{"w": 3}"#);
    let err = safetensors::read_index(&path).unwrap_err().to_string();
    assert!(err.contains("not a string"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors.index.json");
    std::fs::write(&path, r#"{"metadata": {}}"#).unwrap();
    let err = safetensors::read_index(&path).unwrap_err().to_string();
    assert!(err.contains("weight_map"), "{err}");
    std::fs::write(&path, "{").unwrap();
    let err = safetensors::read_index(&path).unwrap_err().to_string();
    assert!(err.contains("not valid JSON"), "{err}");
}

/// The shape of each tensor of a Llama `LlamaForCausalLM` checkpoint described by `config`.
fn llama_shapes(config: &serde_json::Value) -> BTreeMap<String, Vec<usize>> {
    let get = |key: &str| config[key].as_u64().expect(key) as usize;
    let (dim, ffn, vocab) = (
        get("hidden_size"),
        get("intermediate_size"),
        get("vocab_size"),
    );
    let kv_dim = dim / get("num_attention_heads") * get("num_key_value_heads");
    let mut shapes = BTreeMap::from([
        ("model.embed_tokens.weight".to_string(), vec![vocab, dim]),
        ("model.norm.weight".to_string(), vec![dim]),
    ]);
    if config["tie_word_embeddings"] != serde_json::Value::Bool(true) {
        shapes.insert("lm_head.weight".into(), vec![vocab, dim]);
    }
    for layer in 0..get("num_hidden_layers") {
        let per_layer = [
            ("input_layernorm.weight", vec![dim]),
            ("post_attention_layernorm.weight", vec![dim]),
            ("self_attn.q_proj.weight", vec![dim, dim]),
            ("self_attn.k_proj.weight", vec![kv_dim, dim]),
            ("self_attn.v_proj.weight", vec![kv_dim, dim]),
            ("self_attn.o_proj.weight", vec![dim, dim]),
            ("mlp.gate_proj.weight", vec![ffn, dim]),
            ("mlp.up_proj.weight", vec![ffn, dim]),
            ("mlp.down_proj.weight", vec![dim, ffn]),
        ];
        for (name, shape) in per_layer {
            shapes.insert(format!("model.layers.{layer}.{name}"), shape);
        }
    }
    shapes
}

/// The tiny-llama HF fixture: the index lists exactly the tensors of a Llama model
/// of its config.json, each found in its shard as BF16 with the expected shape.
#[test]
fn tiny_llama_fixture_shards() {
    let dir = llq_testsupport::workspace_root().join("fixtures/tiny-llama/hf");
    let index_path = dir.join("model.safetensors.index.json");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let expected = llama_shapes(&config);
    let index = safetensors::read_index(&index_path).unwrap();
    assert_eq!(
        index.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );

    let shards: BTreeSet<&String> = index.values().collect();
    let mut seen = 0;
    for shard in shards {
        let file = safetensors::open(&dir.join(shard)).unwrap();
        for t in &file.tensors {
            assert_eq!(
                index.get(&t.name),
                Some(shard),
                "{} listed elsewhere",
                t.name
            );
            assert_eq!(t.dtype, DType::BF16, "{}", t.name);
            assert_eq!(Some(&t.shape), expected.get(&t.name), "{}", t.name);
            assert_eq!(file.data(t).len(), t.numel() * 2, "{}", t.name);
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        index.len(),
        "index lists tensors missing from the shards"
    );
}
