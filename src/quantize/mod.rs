//! Quantizing a checkpoint into a GGUF: the type of every tensor ([`policy`]: file types'
//! defaults, llama-quantize's mix rules, overrides, fallbacks), an importance matrix matched to
//! the tensors ([`imatrix`]), the GGUF metadata ([`metadata`]), and the streaming conversion
//! itself ([`pipeline`]).

pub mod calibration;
pub mod fit;
pub mod gptq;
pub mod imatrix;
pub mod metadata;
pub(crate) mod output;
pub mod pipeline;
pub mod policy;

pub use pipeline::{convert, ConvertOptions, ConvertReport, Split};
pub use policy::Policy;
