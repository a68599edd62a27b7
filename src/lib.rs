//! llq: LLaMA-family checkpoints to quantized GGUF, and a runtime to measure what it cost.
