//! The sizes behind `llq plan`: for every file type, the exact size `llq convert` would write (tensor types from
//! the mix rules, header and alignment from the GGUF layout), bits per weight, and the memory a
//! run at a given context needs.

use super::compare::compare_models;
use super::reference::{convert_to, is_unquantized, load_reference, TempPath};
use super::text::chunked_tokens;
use crate::checkpoint::Source;
use crate::error::{Error, Result};
use crate::quantize::metadata;
use crate::quantize::policy::{self, Policy};
use crate::runtime::model::Model;
use crate::tokenizer::Tokenizer;
use llq_formats::gguf::{layout, TensorSpec};
use llq_types::FileType;
use serde::Serialize;
use std::path::Path;

/// One file type's row of `llq plan`.
#[derive(Clone, Debug, Serialize)]
pub struct SizeRow {
    #[serde(serialize_with = "file_type_name")]
    pub file_type: FileType,
    /// Exact bytes of the GGUF `llq convert -t TYPE` writes.
    pub file_bytes: u64,
    /// Bits per weight over tensor data (8 · tensor bytes / weights).
    pub bpw: f64,
    /// KV cache at `ctx` with llama.cpp's default F16 cache: 2 · layers · ctx · kv_dim · 2 bytes.
    pub kv_bytes: u64,
    pub total_bytes: u64,
    pub fits: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kld_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top1: Option<f64>,
}

/// Size of the file `llq convert SRC -t ft` (default options) would write.
pub fn file_size(source: &Source, ft: FileType) -> Result<(u64, f64)> {
    let list: Vec<_> = source
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let plans = policy::assign(&source.hparams, &list, &Policy::new(ft))?;
    let kv = metadata::build(source, ft, None);
    let specs: Vec<TensorSpec> = plans
        .iter()
        .map(|p| TensorSpec {
            name: p.name.clone(),
            dims: p.ggml_dims(),
            ty: p.ty,
        })
        .collect();
    let l = layout(&kv, &specs).map_err(|e| Error::file(&source.path, e.to_string()))?;
    let bytes: usize = plans.iter().map(|p| p.n_bytes()).sum();
    let weights: usize = plans.iter().map(|p| p.n_elements()).sum();
    Ok((l.file_size, 8.0 * bytes as f64 / weights.max(1) as f64))
}

/// Every file type's row; `ram` decides `fits`.
pub fn plan_rows(source: &Source, ctx: usize, ram: Option<u64>) -> Result<Vec<SizeRow>> {
    let hp = &source.hparams;
    let kv_bytes = (2 * hp.n_layer * ctx * hp.n_head_kv * hp.head_dim() * 2) as u64;
    FileType::all()
        .map(|ft| {
            let (file_bytes, bpw) = file_size(source, ft)?;
            let total_bytes = file_bytes + kv_bytes;
            Ok(SizeRow {
                file_type: ft,
                file_bytes,
                bpw,
                kv_bytes,
                total_bytes,
                fits: ram.map(|r| total_bytes <= r),
                kld_mean: None,
                top1: None,
            })
        })
        .collect()
}

fn file_type_name<S: serde::Serializer>(
    ft: &FileType,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(ft.name())
}

/// Convert `src` to every row's type in turn (temporary files) and compare each with the F32
/// model over the first `max_chunks` chunks of `n_ctx` tokens of `text`, filling in KLD and
/// top-1; `on_type` is told each type as its measurement starts.
pub fn measure(
    src: &Path,
    text: &Path,
    n_ctx: usize,
    max_chunks: Option<usize>,
    rows: &mut [SizeRow],
    mut on_type: impl FnMut(FileType),
) -> Result<()> {
    let r = load_reference(src)?;
    if !is_unquantized(&r) {
        return Err(Error::Usage(format!(
            "{}: measuring needs an unquantized source (F32, F16 or BF16)",
            src.display()
        )));
    }
    let tok = Tokenizer::from_model(&r)?;
    let tokens = chunked_tokens(&tok, text, n_ctx, "measuring")?;
    for row in rows.iter_mut() {
        on_type(row.file_type);
        let tmp = TempPath::new("plan");
        convert_to(src, tmp.path(), row.file_type)?;
        let q = Model::load(tmp.path())?;
        let res = compare_models(&r, &q, &tokens, tok.bos(), n_ctx, max_chunks, false);
        row.kld_mean = Some(res.kld_mean);
        row.top1 = Some(res.top1);
    }
    Ok(())
}
