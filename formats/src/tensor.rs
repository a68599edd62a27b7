//! Tensors of a memory-mapped source file (safetensors or .pth): name, element type, shape and
//! the byte range of their contiguous row-major data.

use crate::error::{Error, Result};
use memmap2::Mmap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Element types found in source checkpoints. Only the float ones can be converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F64 => "F64",
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::I16 => "I16",
            DType::I8 => "I8",
            DType::U8 => "U8",
            DType::Bool => "BOOL",
        }
    }
}

/// One tensor: `shape` in row-major (torch / numpy) order, data at `range` of the file's map.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub range: Range<usize>,
}

impl TensorEntry {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A memory-mapped file and the tensors found in it.
#[derive(Clone)]
pub struct MappedTensors {
    pub path: PathBuf,
    pub map: Arc<Mmap>,
    pub tensors: Vec<TensorEntry>,
}

impl MappedTensors {
    pub fn data(&self, t: &TensorEntry) -> &[u8] {
        &self.map[t.range.clone()]
    }

    pub fn get(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Map a whole file read-only.
pub fn map_file(path: &Path) -> Result<Arc<Mmap>> {
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", e))?;
    // SAFETY: the map is read-only; llq never writes to its inputs. Another process truncating
    // the file meanwhile is outside what any mmap-based reader can defend against.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, "cannot map", e))?;
    Ok(Arc::new(map))
}
