//! llq's integration tests, one binary (as ripgrep does): each module tests one command or
//! one claim, through the built `llq` binary and the library's public API, against the
//! independent references in `llq-testsupport` (Python oracles, ggml, the shared data).

mod chunk_kld;
mod common;

mod atomic_output;
mod bad_input;
mod chat;
mod compare;
mod convert;
mod fit;
mod gptq;
mod imatrix;
mod imatrix_compute;
mod imatrix_kld;
mod llama3;
mod llama3_fixture;
mod meta;
mod plan;
mod quant_parity;
mod runtime;
mod shard_merge;
mod split;
mod tokenizer;
mod verify;
