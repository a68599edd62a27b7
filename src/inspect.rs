//! `llq inspect`: what is inside a GGUF, safetensors or .pth file, as text or JSON.

use crate::error::{Error, Result};
use llq_formats::gguf::{GgufFile, Value};
use llq_formats::{pth, safetensors, MappedTensors};
use serde_json::{json, Value as Json};
use std::io::Read;
use std::path::Path;

/// Describe `path` as JSON (the `--json` output; the text output is rendered from it too).
pub fn describe(path: &Path) -> Result<Json> {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| Error::io(path, "cannot read", e))?;
    match &magic {
        b"GGUF" => Ok(describe_gguf(&GgufFile::open(path)?)),
        [b'P', b'K', 3, 4] => Ok(describe_tensors("pth", &pth::open(path)?)),
        _ if path.extension().is_some_and(|x| x == "safetensors") => {
            Ok(describe_tensors("safetensors", &safetensors::open(path)?))
        }
        _ => Err(Error::file(
            path,
            "not a GGUF, safetensors or .pth (zip) file",
        )),
    }
}

fn describe_gguf(file: &GgufFile) -> Json {
    // Value types by gguf-py's names (`UINT32`, …), so dumps compare directly.
    let metadata: Vec<Json> = file
        .metadata
        .iter()
        .map(|(key, value)| {
            let mut entry = json!({
                "key": key,
                "type": value.value_type().name(),
                "value": value.to_json(),
            });
            if let Value::Array(a) = value {
                entry["element_type"] = json!(a.elem_type().name());
            }
            entry
        })
        .collect();
    let tensors: Vec<Json> = file
        .tensors
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "shape": t.dims,
                "type": t.ty.name(),
                "type_id": t.ty.id(),
                "bytes": t.n_bytes(),
                "offset": t.offset,
            })
        })
        .collect();
    json!({
        "format": "gguf",
        "version": file.version,
        "alignment": file.alignment,
        "data_offset": file.shards()[0].data_offset,
        "files": file.shards().iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>(),
        "metadata": metadata,
        "tensors": tensors,
    })
}

fn describe_tensors(format: &str, file: &MappedTensors) -> Json {
    let tensors: Vec<Json> = file
        .tensors
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "shape": t.shape,
                "dtype": t.dtype.name(),
                "bytes": t.range.len(),
                "offset": t.range.start,
            })
        })
        .collect();
    json!({ "format": format, "tensors": tensors })
}

/// Render the description as text: a header, the metadata (long arrays abridged), a table.
pub fn render_text(path: &Path, d: &Json) -> String {
    let mut out = String::new();
    let tensors = d["tensors"].as_array().map_or(&[][..], |v| v.as_slice());
    let format = d["format"].as_str().unwrap_or("?");
    out.push_str(&format!("{}: {format}", path.display()));
    if format == "gguf" {
        out.push_str(&format!(
            " v{}, {} key/values, {} tensors, alignment {}, data at byte {}\n\nmetadata:\n",
            d["version"],
            d["metadata"].as_array().map_or(0, |m| m.len()),
            tensors.len(),
            d["alignment"],
            d["data_offset"]
        ));
        let files = d["files"].as_array().map_or(&[][..], |v| v.as_slice());
        if files.len() > 1 {
            out.push_str(&format!("split set of {} files:\n", files.len()));
            for f in files {
                out.push_str(&format!("  {}\n", f.as_str().unwrap_or("")));
            }
            out.push('\n');
        }
        for kv in d["metadata"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  {:<44} {:<16} {}\n",
                kv["key"].as_str().unwrap_or(""),
                value_type_label(kv),
                abridged(&kv["value"])
            ));
        }
    } else {
        out.push_str(&format!(", {} tensors\n", tensors.len()));
    }
    out.push_str("\ntensors:\n");
    out.push_str(&format!(
        "  {:<36} {:<22} {:<6} {:>14} {:>14}\n",
        "name", "shape", "type", "bytes", "offset"
    ));
    for t in tensors {
        let ty = t
            .get("type")
            .or_else(|| t.get("dtype"))
            .and_then(|v| v.as_str());
        out.push_str(&format!(
            "  {:<36} {:<22} {:<6} {:>14} {:>14}\n",
            t["name"].as_str().unwrap_or(""),
            t["shape"].to_string(),
            ty.unwrap_or(""),
            t["bytes"],
            t["offset"]
        ));
    }
    out
}

fn value_type_label(kv: &Json) -> String {
    match kv.get("element_type").and_then(|t| t.as_str()) {
        Some(elem) => format!(
            "[{elem}; {}]",
            kv["value"].as_array().map_or(0, |a| a.len())
        ),
        None => kv["type"].as_str().unwrap_or("").to_string(),
    }
}

/// Arrays longer than 8 show their first 8 elements.
fn abridged(v: &Json) -> String {
    match v.as_array() {
        Some(a) if a.len() > 8 => {
            let head: Vec<String> = a[..8].iter().map(|x| x.to_string()).collect();
            format!("[{}, …]", head.join(", "))
        }
        _ => v.to_string(),
    }
}
