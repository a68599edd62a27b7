//! `params.json` (Meta) and `config.json` (Hugging Face) into one set of hyperparameters.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// What the converter and the runtime need to know about a LLaMA-family model.
#[derive(Clone, Debug, PartialEq)]
pub struct Hyperparams {
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub norm_eps: f32,
    pub rope_theta: f32,
    pub context_length: usize,
    /// The output projection is the token embedding (no `output.weight`).
    pub tied_embeddings: bool,
}

impl Hyperparams {
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Structural checks shared by every source: positive sizes and whole heads.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let sizes = [
            ("vocabulary size", self.n_vocab),
            ("dim", self.n_embd),
            ("layer count", self.n_layer),
            ("head count", self.n_head),
            ("kv head count", self.n_head_kv),
            ("FFN size", self.n_ff),
        ];
        if let Some((what, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{what} must be positive"));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "dim {} is not a multiple of the head count {}",
                self.n_embd, self.n_head
            ));
        }
        if !self.n_head.is_multiple_of(self.n_head_kv) {
            return Err(format!(
                "head count {} is not a multiple of the kv head count {}",
                self.n_head, self.n_head_kv
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "head size {} is odd; RoPE needs pairs",
                self.head_dim()
            ));
        }
        if !(self.norm_eps > 0.0 && self.norm_eps.is_finite()) {
            return Err(format!("norm eps {} must be positive", self.norm_eps));
        }
        if !(self.rope_theta > 0.0 && self.rope_theta.is_finite()) {
            return Err(format!("rope theta {} must be positive", self.rope_theta));
        }
        Ok(())
    }
}

/// Meta's `params.json`. Sizes are signed so that a negative value gets a clear message.
#[derive(Clone, Debug, Deserialize)]
pub struct MetaParams {
    pub dim: i64,
    pub n_layers: i64,
    pub n_heads: i64,
    pub n_kv_heads: Option<i64>,
    /// −1 in LLaMA 1/2: the embedding's row count decides.
    #[serde(default = "minus_one")]
    pub vocab_size: i64,
    #[serde(default = "default_multiple_of")]
    pub multiple_of: i64,
    pub ffn_dim_multiplier: Option<f64>,
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    pub rope_theta: Option<f64>,
    pub use_scaled_rope: Option<bool>,
    pub max_seq_len: Option<i64>,
}

fn minus_one() -> i64 {
    -1
}
fn default_multiple_of() -> i64 {
    256
}
fn default_norm_eps() -> f64 {
    1e-5
}

/// A JSON size that must be a positive integer.
fn positive(what: &str, v: i64) -> std::result::Result<usize, String> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{what} must be positive, got {v}"))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "cannot read", e))?;
    serde_json::from_str(&text).map_err(|e| Error::new(path, format!("invalid JSON: {e}")))
}

impl MetaParams {
    pub fn load(path: &Path) -> Result<MetaParams> {
        read_json(path)
    }

    /// Meta's FFN width: `h = int(2·4·dim/3)`, scaled by `ffn_dim_multiplier`, rounded up to
    /// `multiple_of` (llama/model.py).
    pub fn ffn_size(&self) -> std::result::Result<usize, String> {
        let dim = positive("dim", self.dim)?;
        let multiple_of = positive("multiple_of", self.multiple_of)?;
        let mut hidden = (2 * 4 * dim) / 3;
        if let Some(m) = self.ffn_dim_multiplier {
            if !(m > 0.0 && m.is_finite()) {
                return Err(format!("ffn_dim_multiplier must be positive, got {m}"));
            }
            hidden = (m * hidden as f64) as usize;
        }
        Ok(hidden.div_ceil(multiple_of) * multiple_of)
    }

    /// Context length: `max_seq_len` when given, else what each LLaMA generation was trained
    /// with, told apart by the fields that changed between them (as llama.cpp's converter does).
    fn context_length(&self) -> usize {
        if let Some(n) = self.max_seq_len.and_then(|n| usize::try_from(n).ok()) {
            if n > 0 {
                return n;
            }
        }
        match (self.rope_theta, self.use_scaled_rope.unwrap_or(false)) {
            (Some(_), true) => 131072,
            (Some(t), false) if t >= 1e6 => 16384,
            (Some(t), false) if t >= 5e5 => 8192,
            _ if self.norm_eps <= 1e-5 => 4096,
            _ => 2048,
        }
    }

    /// Hyperparameters, given the vocabulary size and FFN width found in the tensors, which
    /// must agree with what params.json states.
    pub fn to_hyperparams(
        &self,
        vocab_in_tensors: usize,
        ffn_in_tensors: usize,
    ) -> std::result::Result<Hyperparams, String> {
        let n_embd = positive("dim", self.dim)?;
        let n_head = positive("n_heads", self.n_heads)?;
        let n_vocab = match self.vocab_size {
            -1 => vocab_in_tensors,
            v => {
                let v = positive("vocab_size", v)?;
                if v != vocab_in_tensors {
                    return Err(format!(
                        "vocab_size {v} disagrees with the embedding's {vocab_in_tensors} rows"
                    ));
                }
                v
            }
        };
        let n_ff = self.ffn_size()?;
        if n_ff != ffn_in_tensors {
            return Err(format!(
                "FFN size {n_ff} (from dim, multiple_of, ffn_dim_multiplier) disagrees with \
                 w1's {ffn_in_tensors} rows"
            ));
        }
        let hp = Hyperparams {
            n_vocab,
            n_embd,
            n_layer: positive("n_layers", self.n_layers)?,
            n_head,
            n_head_kv: positive("n_kv_heads", self.n_kv_heads.unwrap_or(self.n_heads))?,
            n_ff,
            norm_eps: self.norm_eps as f32,
            rope_theta: self.rope_theta.unwrap_or(10000.0) as f32,
            context_length: self.context_length(),
            tied_embeddings: false,
        };
        hp.validate()?;
        Ok(hp)
    }
}

/// The fields of a Hugging Face `config.json` that a LLaMA needs.
#[derive(Clone, Debug, Deserialize)]
pub struct HfConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    pub model_type: Option<String>,
    pub hidden_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub num_key_value_heads: Option<i64>,
    pub intermediate_size: i64,
    pub vocab_size: i64,
    #[serde(default = "default_norm_eps")]
    pub rms_norm_eps: f64,
    pub rope_theta: Option<f64>,
    /// transformers 5 moves `rope_theta` (and the scaling) into this object.
    pub rope_parameters: Option<RopeParameters>,
    pub max_position_embeddings: Option<i64>,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    pub head_dim: Option<i64>,
}

/// The part of transformers 5's `rope_parameters` that the hyperparameters need.
#[derive(Clone, Debug, Deserialize)]
pub struct RopeParameters {
    pub rope_theta: Option<f64>,
}

impl HfConfig {
    /// `rope_theta` at the top level (transformers 4) or in `rope_parameters` (5), else 10000.
    pub fn rope_theta(&self) -> f64 {
        self.rope_theta
            .or_else(|| self.rope_parameters.as_ref()?.rope_theta)
            .unwrap_or(10000.0)
    }

    pub fn load(path: &Path) -> Result<HfConfig> {
        let config: HfConfig = read_json(path)?;
        config.check_arch().map_err(|m| Error::new(path, m))?;
        Ok(config)
    }

    fn check_arch(&self) -> std::result::Result<(), String> {
        let llama_type = self.model_type.as_deref().is_none_or(|t| t == "llama");
        let llama_arch = self.architectures.is_empty()
            || self.architectures.iter().any(|a| a == "LlamaForCausalLM");
        if llama_type && llama_arch {
            Ok(())
        } else {
            Err(format!(
                "not a LLaMA model (model_type {:?}, architectures {:?})",
                self.model_type, self.architectures
            ))
        }
    }

    pub fn to_hyperparams(&self) -> std::result::Result<Hyperparams, String> {
        let n_embd = positive("hidden_size", self.hidden_size)?;
        let n_head = positive("num_attention_heads", self.num_attention_heads)?;
        if let Some(hd) = self.head_dim {
            if positive("head_dim", hd)? * n_head != n_embd {
                return Err(format!(
                    "head_dim {hd} × {n_head} heads differs from hidden_size {n_embd}; \
                     llama.cpp's llama architecture needs them equal"
                ));
            }
        }
        let hp = Hyperparams {
            n_vocab: positive("vocab_size", self.vocab_size)?,
            n_embd,
            n_layer: positive("num_hidden_layers", self.num_hidden_layers)?,
            n_head,
            n_head_kv: positive(
                "num_key_value_heads",
                self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            )?,
            n_ff: positive("intermediate_size", self.intermediate_size)?,
            norm_eps: self.rms_norm_eps as f32,
            rope_theta: self.rope_theta() as f32,
            context_length: positive(
                "max_position_embeddings",
                self.max_position_embeddings.unwrap_or(2048),
            )?,
            tied_embeddings: self.tie_word_embeddings,
        };
        hp.validate()?;
        Ok(hp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: &str) -> MetaParams {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ffn_formula_matches_published_llama_sizes() {
        // LLaMA 2 7B: 11008; Llama 3 8B: 14336; LLaMA 2 70B: 28672.
        let l2_7b = meta(r#"{"dim":4096,"multiple_of":256,"n_heads":32,"n_layers":32}"#);
        assert_eq!(l2_7b.ffn_size(), Ok(11008));
        let l3_8b = meta(
            r#"{"dim":4096,"multiple_of":1024,"ffn_dim_multiplier":1.3,"n_heads":32,"n_layers":32}"#,
        );
        assert_eq!(l3_8b.ffn_size(), Ok(14336));
        let l2_70b = meta(
            r#"{"dim":8192,"multiple_of":4096,"ffn_dim_multiplier":1.3,"n_heads":64,"n_layers":80}"#,
        );
        assert_eq!(l2_70b.ffn_size(), Ok(28672));
    }

    #[test]
    fn meta_vocab_and_ffn_must_agree_with_tensors() {
        let p = meta(r#"{"dim":64,"multiple_of":32,"n_heads":4,"n_layers":2,"vocab_size":-1}"#);
        let ff = p.ffn_size().unwrap();
        let hp = p.to_hyperparams(100, ff).unwrap();
        assert_eq!(
            (hp.n_vocab, hp.n_head_kv, hp.context_length),
            (100, 4, 4096)
        );
        assert!(p.to_hyperparams(100, ff + 32).unwrap_err().contains("w1"));
        let fixed = meta(r#"{"dim":64,"n_heads":4,"n_layers":2,"vocab_size":90}"#);
        assert!(fixed
            .to_hyperparams(100, 256)
            .unwrap_err()
            .contains("vocab_size 90"));
    }

    #[test]
    fn meta_refuses_nonpositive_sizes() {
        let p = meta(r#"{"dim":-64,"n_heads":4,"n_layers":2}"#);
        assert!(p
            .to_hyperparams(10, 10)
            .unwrap_err()
            .contains("dim must be positive"));
        let p = meta(r#"{"dim":64,"n_heads":0,"n_layers":2}"#);
        assert!(p.to_hyperparams(10, 192).unwrap_err().contains("n_heads"));
        let p = meta(r#"{"dim":64,"n_heads":4,"n_kv_heads":3,"n_layers":2,"multiple_of":32}"#);
        assert!(p.to_hyperparams(10, 192).unwrap_err().contains("kv head"));
    }

    #[test]
    fn hf_config_maps_fields() {
        let c: HfConfig = serde_json::from_str(
            r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":256,
                "num_hidden_layers":4,"num_attention_heads":8,"num_key_value_heads":4,
                "intermediate_size":416,"vocab_size":512,"rms_norm_eps":1e-5,
                "max_position_embeddings":512,"tie_word_embeddings":true}"#,
        )
        .unwrap();
        let hp = c.to_hyperparams().unwrap();
        assert_eq!(hp.head_dim(), 32);
        assert!(hp.tied_embeddings);
        let mistral: HfConfig = serde_json::from_str(
            r#"{"model_type":"mistral","hidden_size":8,"num_hidden_layers":1,
                "num_attention_heads":2,"intermediate_size":8,"vocab_size":8}"#,
        )
        .unwrap();
        assert!(mistral.check_arch().unwrap_err().contains("not a LLaMA"));
    }

    #[test]
    fn hf_rope_theta_from_either_place() {
        let base = r#""hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,
            "intermediate_size":8,"vocab_size":8"#;
        let theta = |extra: &str| {
            let c: HfConfig = serde_json::from_str(&format!("{{{base}{extra}}}")).unwrap();
            c.to_hyperparams().unwrap().rope_theta
        };
        assert_eq!(theta(""), 10000.0);
        assert_eq!(theta(r#","rope_theta":500000.0"#), 500000.0);
        assert_eq!(
            theta(r#","rope_parameters":{"rope_theta":500000.0,"rope_type":"llama3"}"#),
            500000.0
        );
    }
}
