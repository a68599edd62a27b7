//! GGUF metadata keys, as llama.cpp (`llama-arch.cpp`) and gguf-py (`constants.py`) spell them.
//! Every key llq reads or writes is named here once.

/// `general.*`: the file as a whole.
pub mod general {
    /// Every key of this group starts with this.
    pub const PREFIX: &str = "general.";
    pub const ARCHITECTURE: &str = "general.architecture";
    pub const NAME: &str = "general.name";
    pub const FILE_TYPE: &str = "general.file_type";
    pub const QUANTIZATION_VERSION: &str = "general.quantization_version";
    pub const ALIGNMENT: &str = "general.alignment";
}

/// `llama.*`: hyperparameters of the LLaMA architecture.
pub mod llama {
    pub const VOCAB_SIZE: &str = "llama.vocab_size";
    pub const CONTEXT_LENGTH: &str = "llama.context_length";
    pub const EMBEDDING_LENGTH: &str = "llama.embedding_length";
    pub const BLOCK_COUNT: &str = "llama.block_count";
    pub const FEED_FORWARD_LENGTH: &str = "llama.feed_forward_length";
    pub const HEAD_COUNT: &str = "llama.attention.head_count";
    pub const HEAD_COUNT_KV: &str = "llama.attention.head_count_kv";
    pub const RMS_EPSILON: &str = "llama.attention.layer_norm_rms_epsilon";
    pub const ROPE_DIMENSION_COUNT: &str = "llama.rope.dimension_count";
    pub const ROPE_FREQ_BASE: &str = "llama.rope.freq_base";
}

/// `tokenizer.ggml.*`: the vocabulary and its special tokens.
pub mod tokenizer {
    pub const MODEL: &str = "tokenizer.ggml.model";
    pub const PRE: &str = "tokenizer.ggml.pre";
    pub const TOKENS: &str = "tokenizer.ggml.tokens";
    pub const SCORES: &str = "tokenizer.ggml.scores";
    pub const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
    pub const MERGES: &str = "tokenizer.ggml.merges";
    pub const BOS_ID: &str = "tokenizer.ggml.bos_token_id";
    pub const EOS_ID: &str = "tokenizer.ggml.eos_token_id";
    pub const EOT_ID: &str = "tokenizer.ggml.eot_token_id";
    pub const EOM_ID: &str = "tokenizer.ggml.eom_token_id";
    pub const UNKNOWN_ID: &str = "tokenizer.ggml.unknown_token_id";
    pub const PADDING_ID: &str = "tokenizer.ggml.padding_token_id";
    pub const ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
    pub const ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
    pub const ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
    /// The default chat template; a named one is this key, a dot, and its name.
    pub const CHAT_TEMPLATE: &str = "tokenizer.chat_template";
    /// The names of the named chat templates.
    pub const CHAT_TEMPLATES: &str = "tokenizer.chat_templates";
}

/// `split.*`: a model written as several files (llama.cpp's gguf-split convention).
pub mod split {
    /// Every key of this group starts with this.
    pub const PREFIX: &str = "split.";
    /// This file's index in the set, from 0 (u16).
    pub const NO: &str = "split.no";
    /// How many files the set has (u16).
    pub const COUNT: &str = "split.count";
    /// How many tensors the whole set holds (i32).
    pub const TENSORS_COUNT: &str = "split.tensors.count";
}

/// `quantize.imatrix.*`: which importance matrix steered the rounding (llama-quantize's keys).
pub mod imatrix {
    /// Every key of this group starts with this.
    pub const PREFIX: &str = "quantize.imatrix.";
    pub const FILE: &str = "quantize.imatrix.file";
    pub const DATASET: &str = "quantize.imatrix.dataset";
    pub const ENTRIES_COUNT: &str = "quantize.imatrix.entries_count";
    pub const CHUNKS_COUNT: &str = "quantize.imatrix.chunks_count";
}
