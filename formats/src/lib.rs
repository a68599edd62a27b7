//! Files, not math: GGUF read/write, safetensors, torch `.pth` (zip + restricted pickle),
//! `params.json` / `config.json`, and SentencePiece tokenizer files. Tensor data is exposed as
//! byte ranges of a memory map; nothing here converts numbers.

pub mod error;
pub mod gguf;
pub mod imatrix;
pub mod params;
pub mod pth;
pub mod safetensors;
pub mod sentencepiece;
pub mod tensor;
pub mod tiktoken;
pub mod tokenizer_config;
pub mod tokenizer_json;

pub use error::{Error, Result};
pub use tensor::{DType, MappedTensors, TensorEntry};
