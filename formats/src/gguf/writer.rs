//! Streaming GGUF writer. STUB: to be implemented.

use super::value::Value;
use llq_kernels::GgmlType;
use std::io::{self, Write};

#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    /// ggml order.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

/// Where everything lands in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub alignment: u64,
    /// Absolute offset of the data section (header + padding).
    pub data_offset: u64,
    /// Per tensor, relative to the data section.
    pub offsets: Vec<u64>,
    /// Total file size.
    pub file_size: u64,
}

/// Compute the layout a writer would produce, without writing.
pub fn layout(metadata: &[(String, Value)], tensors: &[TensorSpec]) -> io::Result<Layout> {
    let _ = (metadata, tensors);
    todo!()
}

pub struct GgufWriter<W: Write> {
    out: W,
}

impl<W: Write> GgufWriter<W> {
    pub fn new(out: W, metadata: &[(String, Value)], tensors: &[TensorSpec]) -> io::Result<Self> {
        let _ = (metadata, tensors);
        Ok(GgufWriter { out })
    }
    pub fn write_tensor_data(&mut self, bytes: &[u8]) -> io::Result<()> {
        let _ = bytes;
        todo!()
    }
    pub fn finish(self) -> io::Result<W> {
        Ok(self.out)
    }
}
