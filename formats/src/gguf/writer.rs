//! Streaming GGUF v3 writer: the header is written up front from the tensor specs, then tensor
//! data is streamed in any chunk sizes. The output is a plain `Write` with no buffering of its
//! own: callers writing to a file should pass a `BufWriter`.

use super::codec::Elem;
use super::value::Value;
use super::{alignment_of, check_name, pad_to, tensor_n_bytes, MAGIC, VERSION};
use llq_types::GgmlType;
use std::collections::HashSet;
use std::io::{self, Read, Write};

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

/// A validated file plan: its layout, the exact header bytes and each tensor's unpadded size.
struct Plan {
    layout: Layout,
    header: Vec<u8>,
    sizes: Vec<u64>,
}

/// Compute the layout a writer would produce, without writing.
pub fn layout(metadata: &[(String, Value)], tensors: &[TensorSpec]) -> io::Result<Layout> {
    Ok(plan(metadata, tensors).map_err(invalid_input)?.layout)
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Validate, size every tensor, place each at the running sum of its predecessors' padded sizes,
/// and encode the header (its size decides where the data section starts).
fn plan(metadata: &[(String, Value)], tensors: &[TensorSpec]) -> Result<Plan, String> {
    check_unique(metadata.iter().map(|(k, _)| k.as_str()), "key")?;
    check_unique(tensors.iter().map(|t| t.name.as_str()), "tensor name")?;
    let alignment = alignment_of(metadata)?;
    let mut sizes = Vec::with_capacity(tensors.len());
    let mut offsets = Vec::with_capacity(tensors.len());
    let mut end = 0u64;
    for t in tensors {
        check_name(&t.name)?;
        let size = tensor_n_bytes(&t.name, &t.dims, t.ty)?;
        offsets.push(end);
        sizes.push(size);
        end = end
            .checked_add(size)
            .and_then(|e| pad_to(e, alignment))
            .ok_or("tensor data exceeds 2^64 bytes")?;
    }
    let header = encode_header(metadata, tensors, &offsets);
    let data_offset = pad_to(header.len() as u64, alignment).ok_or("header too large")?;
    let file_size = data_offset
        .checked_add(end)
        .ok_or("file size exceeds 2^64 bytes")?;
    Ok(Plan {
        layout: Layout {
            alignment,
            data_offset,
            offsets,
            file_size,
        },
        header,
        sizes,
    })
}

fn check_unique<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<(), String> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(format!("duplicate {what} '{name}'"));
        }
    }
    Ok(())
}

/// Magic, version, counts, the KVs in the given order, then the tensor infos.
fn encode_header(metadata: &[(String, Value)], tensors: &[TensorSpec], offsets: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    VERSION.encode(&mut out);
    (tensors.len() as u64).encode(&mut out);
    (metadata.len() as u64).encode(&mut out);
    for (key, value) in metadata {
        key.encode(&mut out);
        value.encode(&mut out);
    }
    for (t, offset) in tensors.iter().zip(offsets) {
        t.name.encode(&mut out);
        (t.dims.len() as u32).encode(&mut out);
        t.dims.iter().for_each(|d| d.encode(&mut out));
        t.ty.id().encode(&mut out);
        offset.encode(&mut out);
    }
    out
}

/// Writes one GGUF file. After any error the output is incomplete and the writer should be
/// dropped.
pub struct GgufWriter<W: Write> {
    out: W,
    alignment: u64,
    /// Name and unpadded data size of every tensor, in file order.
    tensors: Vec<(String, u64)>,
    /// Index of the tensor whose data comes next.
    current: usize,
    /// Bytes of `tensors[current]` written so far.
    written: u64,
    /// Data bytes still expected over all tensors; `current` is in range while this is > 0.
    remaining: u64,
}

impl<W: Write> GgufWriter<W> {
    /// Validate the specs (unique names of at most 63 bytes, whole-block rows, `general.alignment`
    /// a U32 power of two if present, else 32) and write the header and its padding.
    pub fn new(
        mut out: W,
        metadata: &[(String, Value)],
        tensors: &[TensorSpec],
    ) -> io::Result<Self> {
        let plan = plan(metadata, tensors).map_err(invalid_input)?;
        out.write_all(&plan.header)?;
        write_zeros(&mut out, plan.layout.data_offset - plan.header.len() as u64)?;
        let mut writer = GgufWriter {
            out,
            alignment: plan.layout.alignment,
            remaining: plan.sizes.iter().sum(),
            tensors: tensors
                .iter()
                .map(|t| t.name.clone())
                .zip(plan.sizes)
                .collect(),
            current: 0,
            written: 0,
        };
        // Empty tensors at the start are complete before any data arrives.
        writer.close_complete_tensors()?;
        Ok(writer)
    }

    /// Append data for the tensors in order; chunks may split or span tensors. Giving more bytes
    /// than the tensors still need is an `InvalidInput` error and writes nothing.
    pub fn write_tensor_data(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() as u64 > self.remaining {
            return Err(invalid_input(format!(
                "{} bytes of tensor data given but the tensors need only {} more",
                bytes.len(),
                self.remaining
            )));
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let size = self.tensors[self.current].1;
            let n = rest.len().min((size - self.written) as usize);
            self.out.write_all(&rest[..n])?;
            self.written += n as u64;
            self.remaining -= n as u64;
            rest = &rest[n..];
            self.close_complete_tensors()?;
        }
        Ok(())
    }

    /// Pad each complete tensor to the alignment and move on, skipping empty tensors.
    fn close_complete_tensors(&mut self) -> io::Result<()> {
        while let Some(&(_, size)) = self.tensors.get(self.current) {
            if self.written < size {
                break;
            }
            let padded = pad_to(size, self.alignment).unwrap_or(size);
            write_zeros(&mut self.out, padded - size)?;
            self.current += 1;
            self.written = 0;
        }
        Ok(())
    }

    /// Check that every tensor got all its data, flush, and return the output.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some((name, size)) = self.tensors.get(self.current) {
            return Err(invalid_input(format!(
                "tensor '{name}' is incomplete: {} of {size} bytes written ({} bytes missing in all)",
                self.written, self.remaining
            )));
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_zeros(out: &mut impl Write, n: u64) -> io::Result<()> {
    io::copy(&mut io::repeat(0).take(n), out).map(|_| ())
}
