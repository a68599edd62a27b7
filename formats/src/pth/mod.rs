//! torch `.pth` checkpoints (torch.save's zip format): a STORED zip holding `<prefix>/data.pkl`,
//! a pickle describing the state dict, and `<prefix>/data/<key>` entries with raw storages.
//! Tensors are mapped in place; the pickle is read by a restricted data-only machine.

mod layout;
mod pickle;
mod state_dict;
mod torch;
mod zip;

use crate::error::{Result, WithPath};
use crate::tensor::{map_file, MappedTensors};
use std::collections::HashMap;
use std::path::Path;

/// Open a torch zip checkpoint and list its tensors in file (dict) order.
pub fn open(path: &Path) -> Result<MappedTensors> {
    let map = map_file(path)?;
    let tensors = read(&map).at(path)?;
    Ok(MappedTensors {
        path: path.to_path_buf(),
        map,
        tensors,
    })
}

/// Parse a torch zip checkpoint held in `bytes` (what [`open`] does after mapping the file).
/// Public so that fuzzers and tests can drive the reader without files.
pub fn parse(bytes: &[u8]) -> std::result::Result<Vec<crate::TensorEntry>, String> {
    read(bytes)
}

fn read(bytes: &[u8]) -> std::result::Result<Vec<crate::TensorEntry>, String> {
    check_not_legacy(bytes)?;
    let entries = zip::entries(bytes)?;
    let (prefix, pkl) = archive_prefix(&entries)?;
    let by_name: HashMap<&str, &zip::Entry> =
        entries.iter().map(|e| (e.name.as_str(), e)).collect();
    if let Some(order) = by_name.get(format!("{prefix}byteorder").as_str()) {
        if &bytes[order.data.clone()] != b"little" {
            return Err(
                "checkpoint was saved on a big-endian machine; only little-endian is supported"
                    .into(),
            );
        }
    }
    let root = pickle::parse(&bytes[pkl.data.clone()])?;
    state_dict::tensors(root)?
        .into_iter()
        .map(|(name, t)| {
            let entry = format!("{prefix}data/{}", t.storage.key);
            let storage = by_name
                .get(entry.as_str())
                .ok_or_else(|| format!("tensor {name:?}: storage entry {entry:?} is missing"))?;
            layout::place(name, t, storage)
        })
        .collect()
}

/// torch < 1.6 (or `_use_new_zipfile_serialization=False`) wrote a bare pickle stream, and
/// older versions a tar file; a torch zip starts with the local header of its data.pkl.
fn check_not_legacy(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok(());
    }
    let what = match bytes.first() {
        Some(0x80) => "a bare pickle stream",
        _ => "not a zip archive",
    };
    Err(format!(
        "unsupported legacy (non-zip) torch format ({what}); re-save it with torch >= 1.6 \
         (torch.save's default zip format)"
    ))
}

/// The directory all members live under, found from the one entry ending in `data.pkl`:
/// "archive/" for `archive/data.pkl` (empty for a bare `data.pkl`).
/// Returns the prefix and the data.pkl entry.
fn archive_prefix(entries: &[zip::Entry]) -> std::result::Result<(&str, &zip::Entry), String> {
    let mut pkls = entries.iter().filter_map(|e| {
        let prefix = e.name.strip_suffix("data.pkl")?;
        (prefix.is_empty() || prefix.ends_with('/')).then_some((prefix, e))
    });
    match (pkls.next(), pkls.next()) {
        (Some(found), None) => Ok(found),
        (None, _) => Err("zip has no data.pkl entry; not a torch checkpoint".into()),
        (Some(_), Some(_)) => {
            Err("zip has several data.pkl entries; not a single torch checkpoint".into())
        }
    }
}
