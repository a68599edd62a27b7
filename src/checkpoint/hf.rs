//! Hugging Face folders: `config.json`, `model.safetensors` or shards with an index, and
//! `tokenizer.model` (or a Llama 3 `tokenizer.json`). Q/K rows are un-permuted to GGUF's interleaved
//! rotary layout.

use super::rope::{add_rope_freqs, Llama3Rope};
use super::tensor_names::{self, Naming};
use super::{collect_tensors, folder_name, Found, OpenOptions, Source, SourceKind, SourceMetadata};
use crate::error::{Error, Result};
use crate::tokenizer;
use llq_formats::params::HfConfig;
use llq_formats::{safetensors, MappedTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const INDEX: &str = "model.safetensors.index.json";

pub(super) fn open_dir(dir: &Path, opts: &OpenOptions) -> Result<Source> {
    let files = if dir.join(INDEX).exists() {
        indexed_shards(dir)?
    } else {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, "cannot list", e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::file(dir, "no .safetensors file in the folder"));
        }
        files
    };
    open_files(dir, &files, opts)
}

/// A single safetensors file: `config.json` and `tokenizer.model` come from its folder.
pub(super) fn open_file(file: &Path, opts: &OpenOptions) -> Result<Source> {
    if file.extension().is_none_or(|x| x != "safetensors") {
        return Err(Error::file(
            file,
            "not a model source: give a Meta or Hugging Face folder, or a .safetensors file",
        ));
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    if !dir.join("config.json").exists() {
        return Err(Error::file(
            file,
            "no config.json beside the safetensors file",
        ));
    }
    open_files(dir, &[file.to_path_buf()], opts)
}

/// The shard files named by the index, each checked to exist.
fn indexed_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = safetensors::read_index(&dir.join(INDEX))?;
    let mut names: Vec<&String> = index.values().collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| {
            let p = dir.join(n);
            if p.exists() {
                Ok(p)
            } else {
                Err(Error::file(
                    dir.join(INDEX),
                    format!("shard {n} is missing"),
                ))
            }
        })
        .collect()
}

fn open_files(dir: &Path, files: &[PathBuf], opts: &OpenOptions) -> Result<Source> {
    let config_path = dir.join("config.json");
    let config = HfConfig::load(&config_path)?;
    let mut hp = config
        .to_hyperparams()
        .map_err(|m| Error::file(&config_path, m))?;

    let mut found = BTreeMap::new();
    for path in files {
        let file = Arc::new(safetensors::open(path)?);
        add_tensors(&file, &mut found)?;
    }
    // A checkpoint without lm_head uses the embedding as output (tied), as transformers does.
    hp.tied_embeddings = !found.contains_key("output.weight");
    let mut tensors = collect_tensors(dir, &hp, found)?;
    for t in &mut tensors {
        if let Some(heads) = rotary_heads(&t.name, &hp) {
            t.reader = t.reader.clone().unpermute_rotary(heads);
        }
    }
    let metadata = SourceMetadata::Build(tokenizer::folder::load_hugging_face(dir, &hp)?);
    let rope = llama3_rope(&config_path)?;
    add_rope_freqs(dir, &hp, &metadata, rope, opts, &mut tensors)?;
    Ok(Source {
        path: dir.to_path_buf(),
        kind: SourceKind::HuggingFace { files: files.len() },
        name: folder_name(dir),
        metadata,
        hparams: hp,
        tensors,
    })
}

/// Add a file's tensors under their GGUF names; a name seen in two files is an error.
fn add_tensors(file: &Arc<MappedTensors>, found: &mut BTreeMap<String, Found>) -> Result<()> {
    for t in &file.tensors {
        if tensor_names::is_ignored(&t.name) {
            continue;
        }
        let gguf = tensor_names::gguf_name(Naming::HuggingFace, &t.name)
            .ok_or_else(|| Error::file(&file.path, format!("unexpected tensor {}", t.name)))?;
        if let Some(prev) = found.get(&gguf) {
            return Err(Error::file(
                &file.path,
                format!(
                    "duplicate tensor {} (also in {})",
                    t.name,
                    prev.parts[0].0.path.display()
                ),
            ));
        }
        let found_tensor = Found {
            source_name: t.name.clone(),
            parts: vec![(file.clone(), t.clone())],
        };
        found.insert(gguf, found_tensor);
    }
    Ok(())
}

/// Q and K rows are permuted by HF's conversion; the head count to undo it with.
fn rotary_heads(gguf_name: &str, hp: &llq_formats::params::Hyperparams) -> Option<usize> {
    if gguf_name.ends_with(".attn_q.weight") {
        Some(hp.n_head)
    } else if gguf_name.ends_with(".attn_k.weight") {
        Some(hp.n_head_kv)
    } else {
        None
    }
}

/// Llama 3.1 RoPE scaling in config.json, if any: `rope_scaling` (transformers 4) or
/// `rope_parameters` (transformers 5) of type "llama3"; type "default" means none.
fn llama3_rope(config_path: &Path) -> Result<Option<Llama3Rope>> {
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| Error::io(config_path, "cannot read", e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::file(config_path, format!("invalid JSON: {e}")))?;
    let Some(rs) = ["rope_scaling", "rope_parameters"]
        .iter()
        .find_map(|k| v.get(k).filter(|r| !r.is_null()))
    else {
        return Ok(None);
    };
    let kind = rs
        .get("rope_type")
        .or_else(|| rs.get("type"))
        .and_then(|t| t.as_str())
        .unwrap_or("");
    match kind {
        "llama3" => {}
        "default" => return Ok(None),
        _ => {
            return Err(Error::file(
                config_path,
                format!("rope_scaling type {kind:?} is not supported (only \"llama3\")"),
            ))
        }
    }
    let d = Llama3Rope::default();
    let num = |k: &str, default: f32| {
        rs.get(k)
            .and_then(|x| x.as_f64())
            .map_or(default, |x| x as f32)
    };
    Ok(Some(Llama3Rope {
        factor: num("factor", d.factor),
        low_freq_factor: num("low_freq_factor", d.low_freq_factor),
        high_freq_factor: num("high_freq_factor", d.high_freq_factor),
        original_context: num("original_max_position_embeddings", d.original_context),
    }))
}
