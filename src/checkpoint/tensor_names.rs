//! The LLaMA tensor set: GGUF names, expected shapes, and the names Meta and Hugging Face use.

use llq_formats::params::Hyperparams;
use llq_types::keys;

/// Tensors that checkpoints carry but llama.cpp does not consume (it refuses extra tensors).
const IGNORED_SUFFIXES: [&str; 2] = ["rope.freqs", "rotary_emb.inv_freq"];

/// Per-layer tensors: (GGUF suffix, Meta suffix, HF suffix).
const LAYER_TENSORS: [(&str, &str, &str); 9] = [
    (
        "attn_norm.weight",
        "attention_norm.weight",
        "input_layernorm.weight",
    ),
    (
        "attn_q.weight",
        "attention.wq.weight",
        "self_attn.q_proj.weight",
    ),
    (
        "attn_k.weight",
        "attention.wk.weight",
        "self_attn.k_proj.weight",
    ),
    (
        "attn_v.weight",
        "attention.wv.weight",
        "self_attn.v_proj.weight",
    ),
    (
        "attn_output.weight",
        "attention.wo.weight",
        "self_attn.o_proj.weight",
    ),
    (
        "ffn_norm.weight",
        "ffn_norm.weight",
        "post_attention_layernorm.weight",
    ),
    (
        "ffn_gate.weight",
        "feed_forward.w1.weight",
        "mlp.gate_proj.weight",
    ),
    (
        "ffn_up.weight",
        "feed_forward.w3.weight",
        "mlp.up_proj.weight",
    ),
    (
        "ffn_down.weight",
        "feed_forward.w2.weight",
        "mlp.down_proj.weight",
    ),
];

/// Model-wide tensors: (GGUF name, Meta name, HF name).
const GLOBAL_TENSORS: [(&str, &str, &str); 3] = [
    (
        "token_embd.weight",
        "tok_embeddings.weight",
        "model.embed_tokens.weight",
    ),
    ("output_norm.weight", "norm.weight", "model.norm.weight"),
    ("output.weight", "output.weight", "lm_head.weight"),
];

/// Which naming scheme a checkpoint uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    Meta,
    HuggingFace,
}

/// Whether a source tensor is one llama.cpp does not want.
pub fn is_ignored(name: &str) -> bool {
    IGNORED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// The GGUF name of a checkpoint tensor, or `None` if it is not part of a LLaMA.
pub fn gguf_name(naming: Naming, name: &str) -> Option<String> {
    let pick = |row: &(&'static str, &'static str, &'static str)| match naming {
        Naming::Meta => row.1,
        Naming::HuggingFace => row.2,
    };
    if let Some(row) = GLOBAL_TENSORS.iter().find(|r| pick(r) == name) {
        return Some(row.0.to_string());
    }
    let layers_prefix = match naming {
        Naming::Meta => "layers.",
        Naming::HuggingFace => "model.layers.",
    };
    let rest = name.strip_prefix(layers_prefix)?;
    let (index, suffix) = rest.split_once('.')?;
    let layer: usize = index.parse().ok()?;
    let row = LAYER_TENSORS.iter().find(|r| pick(r) == suffix)?;
    Some(format!("blk.{layer}.{}", row.0))
}

/// One tensor of the GGUF model: its name and its shape in row-major (torch) order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorShape {
    pub name: String,
    pub shape: Vec<usize>,
}

/// Every tensor a LLaMA with these hyperparameters has, in llama.cpp's file order.
pub fn expected_tensors(hp: &Hyperparams) -> Vec<TensorShape> {
    let kv = hp.n_head_kv * hp.head_dim();
    let t = |name: String, shape: &[usize]| TensorShape {
        name,
        shape: shape.to_vec(),
    };
    let mut out = vec![
        t("token_embd.weight".into(), &[hp.n_vocab, hp.n_embd]),
        t("output_norm.weight".into(), &[hp.n_embd]),
    ];
    if !hp.tied_embeddings {
        out.push(t("output.weight".into(), &[hp.n_vocab, hp.n_embd]));
    }
    for layer in 0..hp.n_layer {
        for (suffix, shape) in [
            ("attn_norm.weight", vec![hp.n_embd]),
            ("attn_q.weight", vec![hp.n_embd, hp.n_embd]),
            ("attn_k.weight", vec![kv, hp.n_embd]),
            ("attn_v.weight", vec![kv, hp.n_embd]),
            ("attn_output.weight", vec![hp.n_embd, hp.n_embd]),
            ("ffn_norm.weight", vec![hp.n_embd]),
            ("ffn_gate.weight", vec![hp.n_ff, hp.n_embd]),
            ("ffn_up.weight", vec![hp.n_ff, hp.n_embd]),
            ("ffn_down.weight", vec![hp.n_embd, hp.n_ff]),
        ] {
            out.push(t(format!("blk.{layer}.{suffix}"), &shape));
        }
    }
    out
}

/// Hyperparameters from a llama GGUF's metadata; every key must be present with a usable value.
pub fn hparams_from_gguf(file: &llq_formats::gguf::GgufFile) -> Result<Hyperparams, String> {
    let arch = file
        .get(keys::general::ARCHITECTURE)
        .and_then(|v| v.as_str())
        .ok_or("no general.architecture key")?;
    if arch != "llama" {
        return Err(format!(
            "architecture {arch:?} is not supported (llama only)"
        ));
    }
    let int = |key: &str| -> Result<usize, String> {
        let v = file
            .get(&format!("llama.{key}"))
            .ok_or_else(|| format!("missing key llama.{key}"))?;
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("llama.{key} is not a non-negative integer"))
    };
    let float = |key: &str, default: f32| -> Result<f32, String> {
        match file.get(&format!("llama.{key}")) {
            None => Ok(default),
            Some(v) => v
                .as_f32()
                .ok_or_else(|| format!("llama.{key} is not a float")),
        }
    };
    let n_embd = int("embedding_length")?;
    let n_head = int("attention.head_count")?;
    let n_vocab = match int("vocab_size") {
        Ok(n) => n,
        // Older files carry the vocabulary size only as the token list's length.
        Err(_) => file
            .get(keys::tokenizer::TOKENS)
            .and_then(|v| v.as_array())
            .map(|a| a.len())
            .ok_or("missing llama.vocab_size and tokenizer.ggml.tokens")?,
    };
    let hp = Hyperparams {
        n_vocab,
        n_embd,
        n_layer: int("block_count")?,
        n_head,
        n_head_kv: int("attention.head_count_kv").unwrap_or(n_head),
        n_ff: int("feed_forward_length")?,
        norm_eps: float("attention.layer_norm_rms_epsilon", 1e-5)?,
        rope_theta: float("rope.freq_base", 10000.0)?,
        context_length: int("context_length")?,
        tied_embeddings: file.tensor("output.weight").is_none(),
    };
    hp.validate()?;
    Ok(hp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways_of_spelling() {
        assert_eq!(
            gguf_name(Naming::Meta, "layers.12.attention.wk.weight").as_deref(),
            Some("blk.12.attn_k.weight")
        );
        assert_eq!(
            gguf_name(Naming::HuggingFace, "model.layers.3.mlp.down_proj.weight").as_deref(),
            Some("blk.3.ffn_down.weight")
        );
        assert_eq!(
            gguf_name(Naming::HuggingFace, "lm_head.weight").as_deref(),
            Some("output.weight")
        );
        assert_eq!(
            gguf_name(Naming::Meta, "layers.x.attention.wk.weight"),
            None
        );
        assert_eq!(gguf_name(Naming::Meta, "model.embed_tokens.weight"), None);
        assert!(is_ignored("rope.freqs"));
        assert!(is_ignored("model.layers.0.self_attn.rotary_emb.inv_freq"));
    }
}
