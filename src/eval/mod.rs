//! Evaluation over text: perplexity the way llama.cpp computes it.

pub mod perplexity;
