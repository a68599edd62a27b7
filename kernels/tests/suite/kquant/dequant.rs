//! llq's K-quant decoders against gguf-py's `gguf.quants.dequantize`, bit for bit, on random
//! blocks: random bytes everywhere except the fp16 super-block factors, which get finite values.
//! Needs LLQ_PYTHON (with gguf and numpy). gguf-py has no Q8_K; `oracle` checks that one
//! against ggml.

use super::weight_types;
use crate::ggml_oracle::check_dequantize_against_gguf_py;
use llq_testsupport::Rng;

#[test]
fn dequantize_matches_gguf_py() {
    let Some(python) = llq_testsupport::python() else {
        return;
    };
    let mut rng = Rng::new(2024);
    for ty in weight_types() {
        check_dequantize_against_gguf_py(&python, ty, &mut rng);
    }
}
