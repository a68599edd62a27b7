//! llq-formats' integration tests, one binary: hostile and real files for every parser, and
//! the GGUF, SentencePiece and safetensors readers against their reference implementations.

mod fuzz;
mod gguf_python;
mod gguf_roundtrip;
mod pth_fixture;
mod pth_hostile;
mod pth_torch_files;
mod safetensors_duplicates;
mod safetensors_index;
mod safetensors_read;
mod spm_parse;
mod spm_python;
