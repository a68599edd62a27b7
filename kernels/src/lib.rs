//! Numbers, not files: ggml block formats (encode, decode), float conversions and, later, dot
//! kernels. Every tensor type is one row of [`types::TYPES`] plus one [`codec::BlockCodec`] impl.

pub mod codec;
pub mod dot;
pub mod float;
pub mod kquant;
pub mod linalg;
pub mod matmul;
pub mod quant;

pub use codec::{dequantize_row, quantize_row, BlockCodec};
