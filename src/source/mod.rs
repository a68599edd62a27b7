//! Model sources: a Meta checkpoint folder or a Hugging Face folder (or one safetensors file),
//! opened lazily into hyperparameters, a tokenizer and a list of tensors in GGUF order.

mod gguf;
mod hf;
mod meta;
pub mod rows;

use crate::error::{Error, Result};
use crate::model::{self, TensorShape};
use llq_formats::gguf::Value;
use llq_formats::params::Hyperparams;
use llq_formats::sentencepiece::{self, SpmModel};
use llq_formats::{MappedTensors, TensorEntry};
use llq_types::GgmlType;
use rows::{Join, Piece, TensorReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which kind of checkpoint a source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Meta { shards: usize },
    HuggingFace { files: usize },
    Gguf,
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

/// Where the output's metadata comes from.
pub enum SourceMeta {
    /// A checkpoint: metadata is built from the hyperparameters and this tokenizer.
    Checkpoint(SpmModel),
    /// A checkpoint with a byte-level BPE (Llama 3 tiktoken) tokenizer.
    Bpe(crate::bpe_vocab::BpeVocab),
    /// A GGUF being requantized: its key/values are carried over.
    Gguf(Vec<(String, Value)>),
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
    pub meta: SourceMeta,
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
            return match path.extension().and_then(|x| x.to_str()) {
                Some("gguf") if opts.rope_scaling_factor.is_some() => Err(Error::Usage(
                    "--rope-scaling-factor applies to checkpoints, not to a GGUF input".into(),
                )),
                Some("gguf") => gguf::open(path),
                _ => hf::open_file(path, opts),
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

/// Load `tokenizer.model` from `dir` (SentencePiece, or tiktoken for Llama 3, told apart by
/// content), else a Hugging Face `tokenizer.json`; the error says what is missing or wrong.
fn load_tokenizer(dir: &Path, hp: &Hyperparams) -> Result<SourceMeta> {
    let path = dir.join("tokenizer.model");
    if !path.exists() {
        if dir.join("tokenizer.json").exists() {
            return load_tokenizer_json(dir, hp);
        }
        return Err(Error::file(
            dir,
            "no tokenizer.model (SentencePiece or tiktoken) or tokenizer.json in the model folder",
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
    if sentencepiece::looks_like_tiktoken(&bytes) {
        let ranks = llq_formats::tiktoken::parse(&bytes).map_err(|m| Error::file(&path, m))?;
        let vocab = crate::bpe_vocab::BpeVocab::from_tiktoken(&ranks, hp.n_vocab)
            .map_err(|m| Error::file(&path, m))?;
        return Ok(SourceMeta::Bpe(vocab));
    }
    let spm = sentencepiece::parse(&bytes).map_err(|m| Error::file(&path, m))?;
    if spm.pieces.len() != hp.n_vocab {
        return Err(Error::file(
            &path,
            format!(
                "tokenizer has {} pieces but the embedding has {} rows",
                spm.pieces.len(),
                hp.n_vocab
            ),
        ));
    }
    Ok(SourceMeta::Checkpoint(spm))
}

/// A Hugging Face `tokenizer.json` (Llama 3 byte-level BPE). BOS and EOS are config.json's
/// `bos_token_id` / `eos_token_id` when given, else tokenizer_config.json's `bos_token` /
/// `eos_token`; both files are optional.
fn load_tokenizer_json(dir: &Path, hp: &Hyperparams) -> Result<SourceMeta> {
    use llq_formats::tokenizer_json as tj;
    let read = |name: &str| -> Result<Option<(PathBuf, Vec<u8>)>> {
        let path = dir.join(name);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "cannot read", e))?;
        Ok(Some((path, bytes)))
    };
    let specials =
        |name: &str, parse: fn(&[u8]) -> std::result::Result<tj::SpecialTokens, String>| {
            read(name)?.map_or(Ok(tj::SpecialTokens::default()), |(path, bytes)| {
                parse(&bytes).map_err(|m| Error::file(&path, m))
            })
        };
    let config = specials("config.json", tj::config_special_tokens)?;
    let tok_config = specials("tokenizer_config.json", tj::tokenizer_config_special_tokens)?;
    let (path, bytes) = read("tokenizer.json")?
        .ok_or_else(|| Error::file(dir, "no tokenizer.json in the model folder"))?;
    let parsed = tj::parse(&bytes).map_err(|m| Error::file(&path, m))?;
    let vocab = crate::bpe_vocab::BpeVocab::from_tokenizer_json(
        &parsed,
        config.bos.as_ref().or(tok_config.bos.as_ref()),
        config.eos.as_ref().or(tok_config.eos.as_ref()),
        hp.n_vocab,
    )
    .map_err(|m| Error::file(&path, m))?;
    Ok(SourceMeta::Bpe(vocab))
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
    for want in model::expected_tensors(hp) {
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

/// Llama 3.1 RoPE scaling (Meta's `use_scaled_rope`, HF `rope_scaling` of type "llama3").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3Rope {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_context: f32,
}

impl Default for Llama3Rope {
    fn default() -> Self {
        Llama3Rope {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 8192.0,
        }
    }
}

impl Llama3Rope {
    /// The per-pair frequency divisors llama.cpp reads from `rope_freqs.weight`: 1 for short
    /// wavelengths, `factor` for long ones, and a smooth blend between.
    pub fn divisors(&self, head_dim: usize, theta: f32) -> Vec<f32> {
        let low_wavelen = self.original_context / self.low_freq_factor;
        let high_wavelen = self.original_context / self.high_freq_factor;
        (0..head_dim / 2)
            .map(|i| {
                let freq = 1.0 / (theta as f64).powf((2 * i) as f64 / head_dim as f64);
                let wavelen = (2.0 * std::f64::consts::PI / freq) as f32;
                if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    self.factor
                } else {
                    let smooth = (self.original_context / wavelen - self.low_freq_factor)
                        / (self.high_freq_factor - self.low_freq_factor);
                    1.0 / ((1.0 - smooth) / self.factor + smooth)
                }
            })
            .collect()
    }
}

/// The `rope_freqs.weight` tensor for Llama 3.1 scaling, held in anonymous memory.
fn rope_freqs_tensor(dir: &Path, hp: &Hyperparams, rope: &Llama3Rope) -> Result<SourceTensor> {
    if !(rope.factor > 0.0
        && rope.low_freq_factor > 0.0
        && rope.high_freq_factor > rope.low_freq_factor
        && rope.original_context > 0.0)
    {
        return Err(Error::file(
            dir,
            format!("invalid Llama 3 RoPE scaling parameters {rope:?}"),
        ));
    }
    let values = rope.divisors(hp.head_dim(), hp.rope_theta);
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut map = memmap2::MmapMut::map_anon(bytes.len())
        .map_err(|e| Error::io(dir, "cannot allocate rope_freqs", e))?;
    map.copy_from_slice(&bytes);
    let map = Arc::new(
        map.make_read_only()
            .map_err(|e| Error::io(dir, "cannot allocate rope_freqs", e))?,
    );
    let shape = vec![values.len()];
    let piece = Piece::from_gguf(map, 0..bytes.len(), GgmlType::F32, &shape);
    Ok(SourceTensor {
        name: "rope_freqs.weight".into(),
        shape,
        reader: TensorReader::new(vec![piece], Join::Rows),
    })
}

/// Add `rope_freqs.weight` (first, as llama.cpp's converter does) when the checkpoint uses
/// Llama 3.1 RoPE scaling, with `--rope-scaling-factor` applied. Scaling belongs to the Llama 3
/// family, so it is refused with a SentencePiece (Llama 1/2) vocabulary, and the flag is
/// refused for a model without scaling.
fn add_rope_freqs(
    dir: &Path,
    hp: &Hyperparams,
    meta: &SourceMeta,
    rope: Option<Llama3Rope>,
    opts: &OpenOptions,
    tensors: &mut Vec<SourceTensor>,
) -> Result<()> {
    let Some(mut rope) = rope else {
        return match opts.rope_scaling_factor {
            Some(_) => Err(Error::file(
                dir,
                "--rope-scaling-factor given but the model does not use Llama 3.1 RoPE scaling \
                 (use_scaled_rope / rope_scaling llama3)",
            )),
            None => Ok(()),
        };
    };
    if let Some(factor) = opts.rope_scaling_factor {
        rope.factor = factor;
    }
    if !matches!(meta, SourceMeta::Bpe(_)) {
        return Err(Error::file(
            dir,
            format!(
                "Llama 3.1 RoPE scaling (use_scaled_rope / rope_scaling llama3) with a \
                 {}-token SentencePiece vocabulary: not a Llama 3 model",
                hp.n_vocab
            ),
        ));
    }
    tensors.insert(0, rope_freqs_tensor(dir, hp, &rope)?);
    Ok(())
}
