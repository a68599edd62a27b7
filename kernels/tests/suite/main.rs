//! The integration tests of llq-kernels, one binary with a module per subject:
//! - `legacy`, `kquant`: the block encoders and decoders against ggml and gguf-py (the Python
//!   oracles in the workspace's `tests/py`, reached through `llq_testsupport`) and against
//!   error bounds of their own;
//! - `dot`: every ISA table's dot kernels against the scalar reference and against f64, the
//!   register tiles, and `matmul`;
//! - `gptq`: error-compensated quantization against ggml's rounding on a proxy loss.
//!
//! Type lists come from the types table and the kernel tables, so a new type is tested by
//! every test that applies to it (and fails the ones whose per-type data it lacks).

mod common;
mod dot;
mod ggml_oracle;
mod gptq;
mod iquant;
mod isa;
mod kquant;
mod legacy;
