//! llq: LLaMA-family checkpoints to quantized GGUF, and the tools to measure what it cost.
//!
//! The data flows one way: [`source`] (Meta .pth or HF safetensors, read lazily) → [`plan`]
//! (a target type per tensor) → [`convert`] (rows decoded, encoded by `llq-kernels`, streamed
//! into a GGUF writer from `llq-formats` behind an [`output::AtomicFile`]).

pub mod bpe_vocab;
pub mod cli;
pub mod convert;
pub mod error;
pub mod eval;
pub mod inspect;
pub mod metadata;
pub mod model;
pub mod output;
pub mod plan;
pub mod progress;
pub mod runtime;
pub mod source;
pub mod verify;

pub use error::{Error, Result};
