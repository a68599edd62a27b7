//! Evaluation over text: perplexity the way llama.cpp computes it, comparison of a quantized
//! model with its reference (KL divergence, top-1, PPL ratio) and of its weights, importance
//! matrices, and the sizes of every file type.

pub mod compare;
pub mod imatrix;
pub mod perplexity;
pub mod plot;
pub mod reference;
pub mod sizing;
pub mod tensor_error;
pub mod text;
