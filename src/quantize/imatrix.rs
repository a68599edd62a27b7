//! An importance matrix (llama.cpp's imatrix) matched to the tensors being quantized, as
//! llama-quantize matches it, and the `quantize.imatrix.*` keys that record it.

use super::policy::TensorTarget;
use crate::error::{Error, Result};
use llq_formats::gguf::Value;
use llq_formats::imatrix::Imatrix;
use llq_types::keys;
use std::path::Path;

/// What [`match_imatrix`] found.
pub struct Matched {
    /// Per tensor, in order: the importance of each column, or `None`.
    pub importance: Vec<Option<Vec<f32>>>,
    /// What the user should know (entries unused or missing); the caller prints them.
    pub warnings: Vec<String>,
}

/// The imatrix entry of each tensor to quantize, as llama-quantize picks them: an entry whose name is
/// a tensor's GGUF name must hold one weight per column (else an error naming the tensor and
/// both sizes; for `token_embd.weight` only a warning, and the entry is not used). Quantized
/// tensors without an entry are quantized without importance and listed in one warning; entries
/// for tensors the model lacks are ignored with a warning. An imatrix none of whose entries
/// names a tensor of the model is an error: it was made for another model.
pub fn match_imatrix(path: &Path, imatrix: &Imatrix, targets: &[TensorTarget]) -> Result<Matched> {
    const TOKEN_EMBD: &str = "token_embd.weight";
    let mut warnings = Vec::new();
    let mut warn = |msg: String| warnings.push(msg);
    let mut missing = Vec::new();
    let mut out = Vec::with_capacity(targets.len());
    for p in targets {
        let row_len = *p.shape.last().unwrap_or(&1);
        let entry = match imatrix.entries.get(&p.name) {
            Some(v) if v.len() == row_len => Some(v.clone()),
            Some(v) if p.name == TOKEN_EMBD => {
                warn(format!(
                    "{}: entry {TOKEN_EMBD} has {} values but the tensor has {row_len} columns; \
                     not using it",
                    path.display(),
                    v.len()
                ));
                None
            }
            Some(v) => {
                return Err(Error::file(
                    path,
                    format!(
                        "tensor {}: imatrix entry has {} values, expected {row_len} (one per \
                         column); was it made for another model?",
                        p.name,
                        v.len()
                    ),
                ))
            }
            None => {
                if p.ty.is_quantized() && p.name != TOKEN_EMBD {
                    missing.push(p.name.as_str());
                }
                None
            }
        };
        // Only quantized types weight their rounding; F32/F16/BF16 copies ignore it.
        out.push(entry.filter(|_| p.ty.is_quantized()));
    }
    let matched = targets
        .iter()
        .filter(|p| imatrix.entries.contains_key(&p.name))
        .count();
    if matched == 0 {
        let example = imatrix.entries.keys().next().map_or("", |k| k.as_str());
        return Err(Error::file(
            path,
            format!(
                "none of its {} entries names a tensor of this model (first: {example:?}); \
                 was it made for another model?",
                imatrix.entries.len()
            ),
        ));
    }
    if !missing.is_empty() {
        warn(format!(
            "{}: no entry for {} quantized tensor(s), quantized without importance: {}",
            path.display(),
            missing.len(),
            missing.join(", ")
        ));
    }
    let unused = imatrix.entries.len() - matched;
    if unused > 0 {
        let names: Vec<_> = imatrix
            .entries
            .keys()
            .filter(|k| !targets.iter().any(|p| &p.name == *k))
            .map(String::as_str)
            .collect();
        warn(format!(
            "{}: ignoring {unused} entries for tensors not in the model: {}",
            path.display(),
            names.join(", ")
        ));
    }
    Ok(Matched {
        importance: out,
        warnings,
    })
}

/// The `quantize.imatrix.*` keys llama-quantize records (replacing any the input carried).
pub fn add_metadata(kv: &mut Vec<(String, Value)>, path: &Path, imatrix: &Imatrix) {
    kv.retain(|(k, _)| !k.starts_with(keys::imatrix::PREFIX));
    // llama.cpp keeps at most 127 bytes of these strings.
    let clip = |s: &str| {
        let mut end = s.len().min(127);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Value::String(s[..end].to_string())
    };
    kv.push((keys::imatrix::FILE.into(), clip(&path.to_string_lossy())));
    if let Some(d) = imatrix.datasets.first() {
        kv.push((keys::imatrix::DATASET.into(), clip(d)));
    }
    kv.push((
        keys::imatrix::ENTRIES_COUNT.into(),
        Value::U32(imatrix.entries.len() as u32),
    ));
    if let Some(n) = imatrix.chunks.filter(|&n| n > 0) {
        kv.push((keys::imatrix::CHUNKS_COUNT.into(), Value::U32(n)));
    }
}
