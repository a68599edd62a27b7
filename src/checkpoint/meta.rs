//! Meta checkpoint folders: `consolidated.NN.pth` shards + `params.json` + `tokenizer.model`.
//! Shards are joined by Meta's model-parallel rules, with the axis decided from shapes.

use super::rope::{add_rope_freqs, Llama3Rope};
use super::tensor_names::{self, Naming};
use super::{collect_tensors, folder_name, Found, OpenOptions, Source, SourceKind, SourceMetadata};
use crate::error::{Error, Result};
use crate::tokenizer;
use llq_formats::params::MetaParams;
use llq_formats::{pth, MappedTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) fn open(dir: &Path, opts: &OpenOptions) -> Result<Source> {
    let params = MetaParams::load(&dir.join("params.json"))?;
    let shard_paths = list_shards(dir)?;
    let shards = shard_paths
        .iter()
        .map(|p| pth::open(p).map(Arc::new))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    check_same_names(&shards)?;

    let params_path = dir.join("params.json");
    let dim = usize::try_from(params.dim).unwrap_or(0);
    let vocab = vocab_size(&shards, dim, shards.len());
    let ffn = summed_rows(&shards, "layers.0.feed_forward.w1.weight");
    check_shard_count(dir, &params, ffn, shards.len())?;
    let hp = params
        .to_hyperparams(vocab, ffn)
        .map_err(|m| Error::file(&params_path, m))?;

    let mut found = BTreeMap::new();
    for t in &shards[0].tensors {
        if tensor_names::is_ignored(&t.name) {
            continue;
        }
        let gguf = tensor_names::gguf_name(Naming::Meta, &t.name)
            .ok_or_else(|| Error::file(&shards[0].path, format!("unexpected tensor {}", t.name)))?;
        let parts = shards
            .iter()
            .map(|s| (s.clone(), s.get(&t.name).expect("names checked").clone()))
            .collect();
        found.insert(
            gguf,
            Found {
                source_name: t.name.clone(),
                parts,
            },
        );
    }
    let mut tensors = collect_tensors(dir, &hp, found)?;
    let metadata = SourceMetadata::Build(tokenizer::folder::load_meta(dir, &hp)?);
    let rope = (params.use_scaled_rope == Some(true)).then(Llama3Rope::default);
    add_rope_freqs(dir, &hp, &metadata, rope, opts, &mut tensors)?;
    Ok(Source {
        path: dir.to_path_buf(),
        kind: SourceKind::Meta {
            shards: shards.len(),
        },
        name: folder_name(dir),
        metadata,
        hparams: hp,
        tensors,
    })
}

/// `consolidated.NN.pth` files sorted by number; the numbers must run 0..n without a gap.
fn list_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "cannot list", e))?;
    let mut numbered = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, "cannot list", e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(n) = name
            .strip_prefix("consolidated.")
            .and_then(|r| r.strip_suffix(".pth"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            numbered.push((n, path));
        }
    }
    numbered.sort();
    if numbered.is_empty() {
        return Err(Error::file(
            dir,
            "no consolidated.*.pth shard in the folder",
        ));
    }
    for (expected, (n, _)) in numbered.iter().enumerate() {
        if *n != expected {
            return Err(Error::file(
                dir,
                format!(
                    "shard consolidated.{expected:02}.pth is missing (found shards up to {})",
                    numbered.last().map_or(0, |s| s.0)
                ),
            ));
        }
    }
    Ok(numbered.into_iter().map(|(_, p)| p).collect())
}

/// A set that is whole by its file names can still lack trailing shards: then the tensors hold
/// a whole fraction of the FFN width params.json implies.
fn check_shard_count(dir: &Path, params: &MetaParams, ffn: usize, found: usize) -> Result<()> {
    let Ok(want) = params.ffn_size() else {
        return Ok(()); // params.json's own error is reported with the other checks
    };
    if ffn > 0 && ffn < want && want.is_multiple_of(ffn) {
        return Err(Error::file(
            dir,
            format!(
                "the {found} shard(s) hold {ffn} of the {want} FFN rows params.json implies: \
                 {} shard(s) expected, is a shard missing?",
                found * (want / ffn)
            ),
        ));
    }
    Ok(())
}

/// Every shard must hold the same tensor names.
fn check_same_names(shards: &[Arc<MappedTensors>]) -> Result<()> {
    let names = |s: &MappedTensors| {
        s.tensors
            .iter()
            .map(|t| t.name.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let first = names(&shards[0]);
    for s in &shards[1..] {
        let these = names(s);
        if let Some(n) = first.symmetric_difference(&these).next() {
            let (has, lacks) = if first.contains(n) {
                (&shards[0].path, &s.path)
            } else {
                (&s.path, &shards[0].path)
            };
            return Err(Error::file(
                lacks,
                format!("lacks tensor {n} that {} has", has.display()),
            ));
        }
    }
    Ok(())
}

/// Rows of a tensor summed over shards (0 when absent: the later shape check reports it).
fn summed_rows(shards: &[Arc<MappedTensors>], name: &str) -> usize {
    shards
        .iter()
        .filter_map(|s| s.get(name))
        .map(|t| t.shape.first().copied().unwrap_or(0))
        .sum()
}

/// The vocabulary size from `tok_embeddings`: split on dim 1 in LLaMA 1/2 (rows are the whole
/// vocabulary), on dim 0 in Llama 3 (rows add up).
fn vocab_size(shards: &[Arc<MappedTensors>], dim: usize, n_shards: usize) -> usize {
    let Some(t) = shards[0].get("tok_embeddings.weight") else {
        return 0;
    };
    match t.shape.as_slice() {
        [rows, cols] if n_shards > 1 && *cols == dim => rows * n_shards,
        [rows, _] => *rows,
        _ => 0,
    }
}
