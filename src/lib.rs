//! llq: LLaMA-family checkpoints to quantized GGUF, and the tools to measure what it cost.
//!
//! The data flows one way: `checkpoint` (Meta .pth, HF safetensors or a GGUF, read lazily,
//! row by row) → `quantize` (a target type per tensor, rows encoded by `llq-kernels`,
//! streamed into a GGUF writer from `llq-formats` behind an atomic output file). The
//! `runtime` runs a GGUF, `eval` measures it over text (perplexity, KL divergence against a
//! reference, importance matrices, sizes), `tokenizer` turns text into ids the way llama.cpp
//! does. The `llq` binary's command line lives in `cli`.
//!
//! The public API is what a library user needs: open a checkpoint ([`Source`]), convert it
//! ([`convert`]), load and run a GGUF ([`Model`], [`Session`]), tokenize ([`Tokenizer`]) and
//! compare ([`compare_files`]); everything else is internal.

mod atomic_file;
mod checkpoint;
pub mod cli;
mod error;
mod eval;
mod inspect;
mod metadata_edit;
mod progress;
mod quantize;
mod runtime;
mod tokenizer;

pub use checkpoint::tensor_names::{gguf_name, Naming};
pub use checkpoint::{OpenOptions, Source};
pub use error::{Error, Result};
pub use eval::compare::{compare_files, CompareResult, CompareSpec};
pub use quantize::{convert, ConvertOptions, ConvertReport, Policy};
pub use runtime::forward::{KvCache, Logits, Session};
pub use runtime::model::Model;
pub use runtime::sampler::argmax;
pub use tokenizer::gguf_keys::sentencepiece_keys;
pub use tokenizer::Tokenizer;
