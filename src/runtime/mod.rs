//! The reference runtime: load a GGUF, evaluate it, generate text.

pub mod bench;
pub mod bpe;
pub mod forward;
pub mod generate;
pub mod model;
pub mod ops;
pub mod sampler;
pub mod tokenizer;
