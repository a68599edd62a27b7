//! Llama 3.1 RoPE scaling: the frequency divisors llama.cpp reads from `rope_freqs.weight`,
//! added as a tensor when a checkpoint uses the scaling.

use super::rows::{Join, Piece, TensorReader};
use super::{SourceMetadata, SourceTensor};
use crate::error::{Error, Result};
use crate::tokenizer::{Tokens, Vocabulary};
use llq_formats::params::Hyperparams;
use llq_types::GgmlType;
use std::path::Path;
use std::sync::Arc;

/// Llama 3.1 RoPE scaling (Meta's `use_scaled_rope`, HF `rope_scaling` of type "llama3").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3Rope {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_context: f32,
}

impl Default for Llama3Rope {
    fn default() -> Self {
        Llama3Rope {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 8192.0,
        }
    }
}

impl Llama3Rope {
    /// The per-pair frequency divisors llama.cpp reads from `rope_freqs.weight`: 1 for short
    /// wavelengths, `factor` for long ones, and a smooth blend between.
    pub fn divisors(&self, head_dim: usize, theta: f32) -> Vec<f32> {
        let low_wavelen = self.original_context / self.low_freq_factor;
        let high_wavelen = self.original_context / self.high_freq_factor;
        (0..head_dim / 2)
            .map(|i| {
                let freq = 1.0 / (theta as f64).powf((2 * i) as f64 / head_dim as f64);
                let wavelen = (2.0 * std::f64::consts::PI / freq) as f32;
                if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    self.factor
                } else {
                    let smooth = (self.original_context / wavelen - self.low_freq_factor)
                        / (self.high_freq_factor - self.low_freq_factor);
                    1.0 / ((1.0 - smooth) / self.factor + smooth)
                }
            })
            .collect()
    }
}

/// The `rope_freqs.weight` tensor for Llama 3.1 scaling, held in anonymous memory.
fn rope_freqs_tensor(dir: &Path, hp: &Hyperparams, rope: &Llama3Rope) -> Result<SourceTensor> {
    if !(rope.factor > 0.0
        && rope.low_freq_factor > 0.0
        && rope.high_freq_factor > rope.low_freq_factor
        && rope.original_context > 0.0)
    {
        return Err(Error::file(
            dir,
            format!("invalid Llama 3 RoPE scaling parameters {rope:?}"),
        ));
    }
    let values = rope.divisors(hp.head_dim(), hp.rope_theta);
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut map = memmap2::MmapMut::map_anon(bytes.len())
        .map_err(|e| Error::io(dir, "cannot allocate rope_freqs", e))?;
    map.copy_from_slice(&bytes);
    let map = Arc::new(
        map.make_read_only()
            .map_err(|e| Error::io(dir, "cannot allocate rope_freqs", e))?,
    );
    let shape = vec![values.len()];
    let piece = Piece::from_gguf(map, 0..bytes.len(), GgmlType::F32, &shape);
    Ok(SourceTensor {
        name: "rope_freqs.weight".into(),
        shape,
        reader: TensorReader::new(vec![piece], Join::Rows),
    })
}

/// Add `rope_freqs.weight` (first, as llama.cpp's converter does) when the checkpoint uses
/// Llama 3.1 RoPE scaling, with `--rope-scaling-factor` applied. Scaling belongs to the Llama 3
/// family, so it is refused with a SentencePiece (Llama 1/2) vocabulary, and the flag is
/// refused for a model without scaling.
pub(super) fn add_rope_freqs(
    dir: &Path,
    hp: &Hyperparams,
    metadata: &SourceMetadata,
    rope: Option<Llama3Rope>,
    opts: &super::OpenOptions,
    tensors: &mut Vec<SourceTensor>,
) -> Result<()> {
    let Some(mut rope) = rope else {
        return match opts.rope_scaling_factor {
            Some(_) => Err(Error::file(
                dir,
                "--rope-scaling-factor given but the model does not use Llama 3.1 RoPE scaling \
                 (use_scaled_rope / rope_scaling llama3)",
            )),
            None => Ok(()),
        };
    };
    if let Some(factor) = opts.rope_scaling_factor {
        rope.factor = factor;
    }
    if !matches!(
        metadata,
        SourceMetadata::Build(Vocabulary {
            tokens: Tokens::Bpe(_),
            ..
        })
    ) {
        return Err(Error::file(
            dir,
            format!(
                "Llama 3.1 RoPE scaling (use_scaled_rope / rope_scaling llama3) with a \
                 {}-token SentencePiece vocabulary: not a Llama 3 model",
                hp.n_vocab
            ),
        ));
    }
    tensors.insert(0, rope_freqs_tensor(dir, hp, &rope)?);
    Ok(())
}
