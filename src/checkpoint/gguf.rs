//! A GGUF file as a source, for `llq quantize`: its tensors are decoded (F32/F16/BF16, or any
//! quantized type when requantizing) and its metadata is carried over.

use super::rows::{Join, Piece, TensorReader};
use super::{tensor_names, Source, SourceKind, SourceMetadata, SourceTensor};
use crate::error::{Error, Result};
use llq_formats::gguf::GgufFile;
use llq_types::keys;
use std::path::Path;

pub(super) fn open(path: &Path) -> Result<Source> {
    let file = GgufFile::open(path)?;
    let hparams = tensor_names::hparams_from_gguf(&file).map_err(|m| Error::file(path, m))?;
    let tensors = file
        .tensors
        .iter()
        .map(|t| {
            let shape: Vec<usize> = t.dims.iter().rev().map(|&d| d as usize).collect();
            let (map, range) = file.tensor_location(t);
            let piece = Piece::from_gguf(map.clone(), range, t.ty, &shape);
            SourceTensor {
                name: t.name.clone(),
                shape,
                reader: TensorReader::new(vec![piece], Join::Rows),
            }
        })
        .collect();
    let name = file
        .get(keys::general::NAME)
        .and_then(|v| v.as_str())
        .unwrap_or("llama")
        .to_string();
    Ok(Source {
        path: path.to_path_buf(),
        kind: SourceKind::Gguf {
            shards: (0..file.shards().len())
                .map(|s| file.tensors.iter().filter(|t| t.shard == s).count())
                .collect(),
        },
        name,
        hparams,
        metadata: SourceMetadata::CarryOver(file.metadata.clone()),
        tensors,
    })
}
