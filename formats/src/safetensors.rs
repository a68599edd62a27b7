//! safetensors files and sharded indexes. STUB: to be implemented.

use crate::error::Result;
use crate::tensor::MappedTensors;
use std::collections::BTreeMap;
use std::path::Path;

pub fn open(path: &Path) -> Result<MappedTensors> {
    let _ = path;
    todo!()
}

/// `model.safetensors.index.json`: tensor name -> shard file name.
pub fn read_index(path: &Path) -> Result<BTreeMap<String, String>> {
    let _ = path;
    todo!()
}
