//! Checkpoints: a Meta folder, a Hugging Face folder (or one safetensors file) or a GGUF,
//! opened lazily into hyperparameters, a vocabulary (or a GGUF's own metadata) and a list of
//! tensors in GGUF order, each read row by row.

mod gguf;
mod hf;
mod meta;
mod rope;
pub mod rows;
pub mod tensor_names;
pub mod verify;

use crate::error::{Error, Result};
use crate::tokenizer::Vocabulary;
use llq_formats::gguf::Value;
use llq_formats::params::Hyperparams;
use llq_formats::{MappedTensors, TensorEntry};
use llq_types::GgmlType;
use rows::{Join, Piece, TensorReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tensor_names::TensorShape;

/// Which kind of checkpoint a source is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Meta {
        shards: usize,
    },
    HuggingFace {
        files: usize,
    },
    /// A GGUF; `shards` holds the tensor count of each of its files (one for a single file).
    Gguf {
        shards: Vec<usize>,
    },
}

/// A tensor of the model, ready to be read row by row.
pub struct SourceTensor {
    /// GGUF name.
    pub name: String,
    /// Row-major (torch) shape.
    pub shape: Vec<usize>,
    pub reader: TensorReader,
}

impl SourceTensor {
    pub fn stored_type(&self) -> GgmlType {
        self.reader.stored_type()
    }
}

/// What the output's GGUF metadata is made from.
pub enum SourceMetadata {
    /// A checkpoint: built from the hyperparameters and this vocabulary.
    Build(Vocabulary),
    /// A GGUF being requantized: its key/values are carried over.
    CarryOver(Vec<(String, Value)>),
}

/// How to read a checkpoint.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Llama 3.1 RoPE scaling factor: replaces Meta's fixed 8 (params.json has no field for
    /// it; Llama 3.2 1B/3B use 32) and the factor in an HF `rope_scaling`.
    pub rope_scaling_factor: Option<f32>,
}

/// An opened checkpoint.
pub struct Source {
    pub path: PathBuf,
    pub kind: SourceKind,
    /// A model name for `general.name`: the folder's name.
    pub name: String,
    pub hparams: Hyperparams,
    pub metadata: SourceMetadata,
    /// In llama.cpp's file order.
    pub tensors: Vec<SourceTensor>,
}

impl Source {
    /// Open `path`: a Meta folder (`consolidated.*.pth` + `params.json`), a Hugging Face folder
    /// (`config.json` + safetensors), or a single `.safetensors` file with `config.json` beside it.
    pub fn open(path: &Path) -> Result<Source> {
        Source::open_with(path, &OpenOptions::default())
    }

    /// [`Source::open`] with options that change how a checkpoint is read.
    pub fn open_with(path: &Path, opts: &OpenOptions) -> Result<Source> {
        if path.is_file() {
            // Told apart by content, not by name: a GGUF starts with its magic bytes.
            return match llq_formats::gguf::is_gguf(path) {
                true if opts.rope_scaling_factor.is_some() => Err(Error::Usage(
                    "--rope-scaling-factor applies to checkpoints, not to a GGUF input".into(),
                )),
                true => gguf::open(path),
                false => hf::open_file(path, opts),
            };
        }
        if !path.is_dir() {
            return Err(Error::file(path, "no such file or folder"));
        }
        if path.join("params.json").exists() {
            meta::open(path, opts)
        } else if path.join("config.json").exists() {
            hf::open_dir(path, opts)
        } else {
            Err(Error::file(
                path,
                "not a model folder: expected params.json (Meta) or config.json (Hugging Face)",
            ))
        }
    }

    /// Total bytes of source tensor data that a conversion reads.
    pub fn source_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.reader.source_bytes()).sum()
    }
}

/// The folder's name, for `general.name`.
fn folder_name(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "llama".to_string())
}

/// The stored parts of one model tensor as found in a checkpoint (one per shard).
struct Found {
    /// Checkpoint name (for messages).
    source_name: String,
    parts: Vec<(Arc<MappedTensors>, TensorEntry)>,
}

/// Check found pieces against the shape the hyperparameters imply and decide how they join:
/// replicated 1-D tensors use the first piece; 2-D pieces join on the axis whose sum matches.
fn assemble(dir: &Path, want: &TensorShape, found: Found) -> Result<SourceTensor> {
    let Found {
        source_name,
        mut parts,
    } = found;
    let err = |msg: String| Error::file(dir, format!("tensor {source_name}: {msg}"));
    let dtype = parts[0].1.dtype;
    if let Some((_, e)) = parts.iter().find(|(_, e)| e.dtype != dtype) {
        return Err(err(format!(
            "shards disagree on dtype ({} and {})",
            dtype.name(),
            e.dtype.name()
        )));
    }
    let shapes: Vec<&[usize]> = parts.iter().map(|(_, e)| e.shape.as_slice()).collect();
    let all_equal = shapes.iter().all(|s| *s == shapes[0]);
    let join = if shapes.len() == 1 || (want.shape.len() == 1 && all_equal) {
        (shapes[0] == want.shape.as_slice()).then_some(Join::Rows)
    } else if want.shape.len() == 2 && shapes.iter().all(|s| s.len() == 2) {
        let sum = |axis: usize| shapes.iter().map(|s| s[axis]).sum::<usize>();
        let same = |axis: usize| shapes.iter().all(|s| s[axis] == want.shape[axis]);
        if same(1) && sum(0) == want.shape[0] {
            Some(Join::Rows)
        } else if same(0) && sum(1) == want.shape[1] {
            Some(Join::Cols)
        } else {
            None
        }
    } else {
        None
    };
    let Some(join) = join else {
        let partial = shapes[0].iter().product::<usize>() < want.shape.iter().product();
        let hint = if shapes.len() == 1 && partial {
            "; is a shard missing?"
        } else {
            ""
        };
        return Err(err(format!(
            "shape {:?} contradicts the hyperparameters, which imply {:?}{hint}",
            shapes, want.shape
        )));
    };
    if want.shape.len() == 1 {
        // Replicated across shards: the first copy serves.
        parts.truncate(1);
    }
    let pieces = parts
        .iter()
        .map(|(file, e)| Piece::from_entry(file, e))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            err(format!(
                "dtype {} cannot be converted (F32, F16 or BF16 expected)",
                dtype.name()
            ))
        })?;
    Ok(SourceTensor {
        name: want.name.clone(),
        shape: want.shape.clone(),
        reader: TensorReader::new(pieces, join),
    })
}

/// Match found tensors (by GGUF name) against the expected set: everything expected must be
/// present, nothing unexpected may remain.
fn collect_tensors(
    dir: &Path,
    hp: &Hyperparams,
    mut found: std::collections::BTreeMap<String, Found>,
) -> Result<Vec<SourceTensor>> {
    let mut out = Vec::new();
    for want in tensor_names::expected_tensors(hp) {
        let Some(f) = found.remove(&want.name) else {
            return Err(Error::file(dir, format!("missing tensor {}", want.name)));
        };
        out.push(assemble(dir, &want, f)?);
    }
    if let Some((name, f)) = found.into_iter().next() {
        return Err(Error::file(
            dir,
            format!(
                "unexpected tensor {} (GGUF {name}) for a {}-layer model",
                f.source_name, hp.n_layer
            ),
        ));
    }
    Ok(out)
}
