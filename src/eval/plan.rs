//! `llq plan`: for every file type, the exact size `llq convert` would write (tensor types from
//! the mix rules, header and alignment from the GGUF layout), bits per weight, and the memory a
//! run at a given context needs.

use crate::error::{Error, Result};
use crate::metadata;
use crate::plan::{self, PlanOptions};
use crate::source::Source;
use llq_formats::gguf::{layout, TensorSpec};
use llq_types::FileType;
use serde::Serialize;

/// One row of `llq plan`.
#[derive(Clone, Debug, Serialize)]
pub struct PlanRow {
    pub file_type: &'static str,
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
    let plans = plan::plan(&source.hparams, &list, &PlanOptions::new(ft))?;
    let kv = metadata::build(source, ft);
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
pub fn plan_rows(source: &Source, ctx: usize, ram: Option<u64>) -> Result<Vec<PlanRow>> {
    let hp = &source.hparams;
    let kv_bytes = (2 * hp.n_layer * ctx * hp.n_head_kv * hp.head_dim() * 2) as u64;
    FileType::all()
        .map(|ft| {
            let (file_bytes, bpw) = file_size(source, ft)?;
            let total_bytes = file_bytes + kv_bytes;
            Ok(PlanRow {
                file_type: ft.name(),
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

/// "8GiB", "512MiB", "8GB", "1.5G", "123456" (bytes) → bytes. G/M/K alone are binary units.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 8GiB, 512MB)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    Ok((x * mult).round() as u64)
}

/// Human-readable binary size.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024f64.powi(3) {
        format!("{:.2} GiB", b / 1024f64.powi(3))
    } else if b >= 1024f64.powi(2) {
        format!("{:.2} MiB", b / 1024f64.powi(2))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}
