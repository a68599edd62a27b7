//! A LLaMA loaded from a GGUF file: hyperparameters from metadata and weights as typed views
//! into the memory map (no copy of weight data).

use crate::checkpoint::tensor_names::{expected_tensors, hparams_from_gguf};
use crate::error::{Error, Result};
use llq_formats::gguf::{GgufFile, TensorInfo};
use llq_formats::params::Hyperparams;
use llq_kernels::matmul::Weights;
use llq_types::GgmlType;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// A 2-D weight: where its bytes are and its rows × cols (cols contiguous).
#[derive(Clone, Debug)]
pub struct Matrix {
    pub ty: GgmlType,
    storage: Storage,
    pub rows: usize,
    pub cols: usize,
}

/// Where a weight's bytes are.
#[derive(Clone, Debug)]
enum Storage {
    /// In the memory map of one file of the model.
    Mapped { shard: usize, range: Range<usize> },
    /// In memory: a weight replaced by [`Model::replace`].
    Owned(Arc<[u8]>),
}

/// One transformer block's weights.
pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    pub wo: Matrix,
    pub ffn_norm: Vec<f32>,
    pub w_gate: Matrix,
    pub w_up: Matrix,
    pub w_down: Matrix,
}

pub struct Model {
    pub file: GgufFile,
    pub hp: Hyperparams,
    pub tok_embd: Matrix,
    pub output_norm: Vec<f32>,
    /// `output.weight`, or the token embedding when tied.
    pub output: Matrix,
    pub layers: Vec<Layer>,
    /// RoPE frequency divisors (`rope_freqs.weight`, Llama 3.1 scaling), one per pair.
    pub rope_freqs: Option<Vec<f32>>,
}

impl Model {
    pub fn load(path: &Path) -> Result<Model> {
        let file = GgufFile::open(path)?;
        let hp = hparams_from_gguf(&file).map_err(|m| Error::file(path, m))?;
        let err = |m: String| Error::file(path, m);
        let loader = Loader {
            file: &file,
            hp: &hp,
        };
        // Every tensor a llama of these dimensions has must be present with its shape.
        for want in expected_tensors(&hp) {
            loader.info(&want.name, &want.shape).map_err(err)?;
        }
        let layers = (0..hp.n_layer)
            .map(|i| loader.layer(i))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(err)?;
        let tok_embd = loader
            .matrix("token_embd.weight", &[hp.n_vocab, hp.n_embd])
            .map_err(err)?;
        let output = if hp.tied_embeddings {
            tok_embd.clone()
        } else {
            loader
                .matrix("output.weight", &[hp.n_vocab, hp.n_embd])
                .map_err(err)?
        };
        let output_norm = loader
            .vector("output_norm.weight", hp.n_embd)
            .map_err(err)?;
        let rope_freqs = match file.tensor("rope_freqs.weight") {
            None => None,
            Some(_) => Some(
                loader
                    .vector("rope_freqs.weight", hp.head_dim() / 2)
                    .map_err(err)?,
            ),
        };
        Ok(Model {
            hp,
            tok_embd,
            output_norm,
            output,
            layers,
            rope_freqs,
            file,
        })
    }

    /// A weight as the kernels take it.
    pub fn weights<'a>(&'a self, m: &'a Matrix) -> Weights<'a> {
        let data: &[u8] = match &m.storage {
            Storage::Mapped { shard, range } => &self.file.shards()[*shard].map[range.clone()],
            Storage::Owned(bytes) => bytes,
        };
        Weights::new(m.ty, data, m.rows, m.cols)
            .expect("checked when the model was loaded or replaced")
    }

    /// The matrix of tensor `name` (GGUF name), if the model has one.
    pub fn matrix_mut(&mut self, name: &str) -> Option<&mut Matrix> {
        if name == "token_embd.weight" {
            return Some(&mut self.tok_embd);
        }
        if name == "output.weight" {
            return Some(&mut self.output);
        }
        let rest = name.strip_prefix("blk.")?;
        let (layer, kind) = rest.split_once('.')?;
        let l = self.layers.get_mut(layer.parse::<usize>().ok()?)?;
        Some(match kind {
            "attn_q.weight" => &mut l.wq,
            "attn_k.weight" => &mut l.wk,
            "attn_v.weight" => &mut l.wv,
            "attn_output.weight" => &mut l.wo,
            "ffn_gate.weight" => &mut l.w_gate,
            "ffn_up.weight" => &mut l.w_up,
            "ffn_down.weight" => &mut l.w_down,
            _ => return None,
        })
    }

    /// Replace the weights of tensor `name` by `data`, rows of type `ty` (for measuring what
    /// quantizing one tensor costs); returns the matrix replaced, to put back afterwards.
    pub fn replace(
        &mut self,
        name: &str,
        ty: GgmlType,
        data: Arc<[u8]>,
    ) -> std::result::Result<Matrix, String> {
        let m = self
            .matrix_mut(name)
            .ok_or_else(|| format!("no weight matrix {name}"))?;
        Weights::new(ty, &data, m.rows, m.cols).map_err(|e| format!("{name}: {e}"))?;
        let replacement = Matrix {
            ty,
            storage: Storage::Owned(data),
            rows: m.rows,
            cols: m.cols,
        };
        Ok(std::mem::replace(m, replacement))
    }

    /// Put a matrix taken by [`Model::replace`] back.
    pub fn restore(&mut self, name: &str, original: Matrix) {
        if let Some(m) = self.matrix_mut(name) {
            *m = original;
        }
    }
}

struct Loader<'a> {
    file: &'a GgufFile,
    hp: &'a Hyperparams,
}

impl Loader<'_> {
    /// The tensor `name`, which must have `shape` (row-major, as torch writes it).
    fn info(&self, name: &str, shape: &[usize]) -> std::result::Result<&TensorInfo, String> {
        let t = self
            .file
            .tensor(name)
            .ok_or_else(|| format!("missing tensor {name}"))?;
        let have: Vec<usize> = t.dims.iter().rev().map(|&d| d as usize).collect();
        if have != shape {
            return Err(format!(
                "tensor {name} has shape {have:?} but the metadata implies {shape:?}"
            ));
        }
        Ok(t)
    }

    fn matrix(&self, name: &str, shape: &[usize]) -> std::result::Result<Matrix, String> {
        let t = self.info(name, shape)?;
        let (_, range) = self.file.tensor_location(t);
        let m = Matrix {
            ty: t.ty,
            storage: Storage::Mapped {
                shard: t.shard,
                range,
            },
            rows: shape[0],
            cols: shape[1],
        };
        // Refuse types without a kernel now rather than mid-evaluation.
        Weights::new(m.ty, self.file.tensor_data(t), m.rows, m.cols)
            .map_err(|e| format!("tensor {name}: {e}"))?;
        Ok(m)
    }

    /// A 1-D tensor decoded to f32 (norm weights and rope_freqs are small).
    fn vector(&self, name: &str, n: usize) -> std::result::Result<Vec<f32>, String> {
        let t = self.info(name, &[n])?;
        let mut out = vec![0f32; n];
        llq_kernels::dequantize_row(t.ty, self.file.tensor_data(t), &mut out);
        Ok(out)
    }

    fn layer(&self, i: usize) -> std::result::Result<Layer, String> {
        let hp = self.hp;
        let (d, kv, ff) = (hp.n_embd, hp.n_head_kv * hp.head_dim(), hp.n_ff);
        let name = |s: &str| format!("blk.{i}.{s}.weight");
        Ok(Layer {
            attn_norm: self.vector(&name("attn_norm"), d)?,
            wq: self.matrix(&name("attn_q"), &[d, d])?,
            wk: self.matrix(&name("attn_k"), &[kv, d])?,
            wv: self.matrix(&name("attn_v"), &[kv, d])?,
            wo: self.matrix(&name("attn_output"), &[d, d])?,
            ffn_norm: self.vector(&name("ffn_norm"), d)?,
            w_gate: self.matrix(&name("ffn_gate"), &[ff, d])?,
            w_up: self.matrix(&name("ffn_up"), &[ff, d])?,
            w_down: self.matrix(&name("ffn_down"), &[d, ff])?,
        })
    }
}
