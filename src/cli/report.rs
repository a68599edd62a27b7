//! What `convert` and `quantize` print: a per-type table, every fallback, a closing line, and
//! the same as JSON on request.

use crate::convert::ConvertReport;
use crate::error::{Error, Result};
use crate::plan;
use serde_json::json;
use std::path::Path;

/// Per-type summary, fallbacks, and the closing line; the same as JSON with `--json FILE`.
pub fn print_report(out: &Path, r: &ConvertReport, json_path: Option<&Path>) -> Result<()> {
    let types = plan::summarize(&r.tensors);
    eprintln!(
        "{:<6} {:>8} {:>14} {:>8}",
        "type", "tensors", "bytes", "bpw"
    );
    for (ty, n, bytes, elems) in &types {
        let bpw = *bytes as f64 * 8.0 / (*elems).max(1) as f64;
        eprintln!("{:<6} {n:>8} {bytes:>14} {bpw:>8.3}", ty.name());
    }
    for t in r.tensors.iter().filter(|t| t.fallback.is_some()) {
        eprintln!(
            "fallback: {}: {}",
            t.name,
            t.fallback.as_deref().unwrap_or("")
        );
    }
    let mb_s = r.input_bytes as f64 / 1e6 / r.seconds.max(1e-9);
    eprintln!(
        "wrote {}: {} tensors, {:.1} MiB, {:.2} s, {mb_s:.0} MB/s of input",
        out.display(),
        r.tensors.len(),
        r.output_bytes as f64 / (1 << 20) as f64,
        r.seconds
    );
    let Some(path) = json_path else {
        return Ok(());
    };
    let report = json!({
        "output": out,
        "output_bytes": r.output_bytes,
        "input_bytes": r.input_bytes,
        "seconds": r.seconds,
        "types": types.iter().map(|(ty, n, bytes, elems)| json!({
            "type": ty.name(), "tensors": n, "bytes": bytes,
            "bits_per_weight": *bytes as f64 * 8.0 / (*elems).max(1) as f64,
        })).collect::<Vec<_>>(),
        "tensors": r.tensors.iter().map(|t| json!({
            "name": t.name, "shape": t.shape, "type": t.ty.name(),
            "bytes": t.n_bytes(), "fallback": t.fallback,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&report).expect("JSON values serialize");
    std::fs::write(path, text).map_err(|e| Error::io(path, "cannot write report", e))
}
