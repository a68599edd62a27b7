//! Evaluation over text: perplexity the way llama.cpp computes it, comparison of a quantized
//! model with its reference, and size planning.

pub mod compare;
pub mod imatrix;
pub mod perplexity;
pub mod plan;
