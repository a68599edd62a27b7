//! GGUF v3: typed metadata values, a memory-mapped reader and a streaming writer.
//!
//! The reader and the writer share the rules below (alignment, tensor shapes, names) so that
//! whatever the writer accepts the reader reads back, and both match what llama.cpp accepts.

mod codec;
mod reader;
pub mod split;
mod value;
mod writer;

pub use reader::{parse, GgufFile, ParsedHeader, Shard, TensorInfo};
pub use value::{Array, Value, ValueType};
pub use writer::{layout, GgufWriter, Layout, TensorSpec};

use llq_types::keys;
use llq_types::GgmlType;

/// Default and most common data alignment.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// llama.cpp's limit on tensor name length in bytes.
pub const MAX_NAME_LEN: usize = 63;
/// ggml's maximum number of tensor dimensions.
pub const MAX_DIMS: usize = 4;
/// The file's first four bytes.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The version the writer produces. The reader also accepts 2, which has the same layout.
pub const VERSION: u32 = 3;

/// Whether `path` is a file that starts with the GGUF magic bytes (whatever its name).
pub fn is_gguf(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *MAGIC
}
/// The metadata key that overrides [`DEFAULT_ALIGNMENT`].
pub const ALIGNMENT_KEY: &str = keys::general::ALIGNMENT;

/// The data alignment a metadata list asks for: `general.alignment` must be a U32 power of two.
fn alignment_of(metadata: &[(String, Value)]) -> Result<u64, String> {
    let Some((_, value)) = metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match value {
        Value::U32(a) if a.is_power_of_two() => Ok(u64::from(*a)),
        Value::U32(a) => Err(format!("{ALIGNMENT_KEY} = {a} is not a power of two")),
        other => Err(format!(
            "{ALIGNMENT_KEY} has type {}, expected UINT32",
            other.value_type().name()
        )),
    }
}

/// `n` rounded up to a multiple of `align` (a power of two), or `None` on overflow.
fn pad_to(n: u64, align: u64) -> Option<u64> {
    Some(n.checked_add(align - 1)? & !(align - 1))
}

/// A tensor name llama.cpp accepts: at most [`MAX_NAME_LEN`] bytes.
fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "tensor name '{name}' is {} bytes, longer than the {MAX_NAME_LEN} llama.cpp allows",
            name.len()
        ));
    }
    Ok(())
}

/// Bytes of a tensor's data, or why its shape is invalid: 1 to 4 dims, an element count that
/// fits in an i64 (ggml's `int64_t ne`), and rows (`dims[0]`) made of whole blocks.
fn tensor_n_bytes(name: &str, dims: &[u64], ty: GgmlType) -> Result<u64, String> {
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(format!(
            "tensor '{name}' has {} dims, expected 1 to {MAX_DIMS}",
            dims.len()
        ));
    }
    let too_big = || format!("tensor '{name}' shape {dims:?} has too many elements");
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or_else(too_big)?;
    let row = usize::try_from(dims[0]).map_err(|_| too_big())?;
    let row_bytes = ty.row_bytes(row).ok_or_else(|| {
        format!(
            "tensor '{name}' row length {row} is not a multiple of {}'s block size {}",
            ty.name(),
            ty.block_size()
        )
    })?;
    let n_rows = n_elements.checked_div(dims[0]).unwrap_or(0);
    (row_bytes as u64).checked_mul(n_rows).ok_or_else(too_big)
}

#[cfg(test)]
mod tests;
