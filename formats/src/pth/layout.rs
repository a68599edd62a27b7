//! Where a tensor's bytes lie in the file: its storage entry plus offset, checked.

use super::torch::TensorRef;
use super::zip::Entry;
use crate::tensor::TensorEntry;

/// Place tensor `name` inside `storage`, the zip entry holding its storage's bytes. The tensor
/// must be contiguous row-major, since consumers read its range as one flat array.
pub fn place(name: String, t: TensorRef, storage: &Entry) -> Result<TensorEntry, String> {
    let dtype = t.storage.dtype;
    let elem = dtype.size() as u64;
    let overflow = || format!("tensor {name:?}: size overflows");
    let declared = t.storage.numel.checked_mul(elem).ok_or_else(overflow)?;
    let actual = storage.data.len() as u64;
    if declared != actual {
        return Err(format!(
            "tensor {name:?}: storage {:?} holds {actual} bytes, but the pickle declares {declared}",
            storage.name
        ));
    }
    if !is_contiguous(&t.shape, &t.stride) {
        return Err(format!(
            "tensor {name:?} is not contiguous (size {:?}, stride {:?}); re-save it after .contiguous()",
            t.shape, t.stride
        ));
    }
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .ok_or_else(overflow)?;
    let start = t.offset.checked_mul(elem).ok_or_else(overflow)?;
    let end = numel
        .checked_mul(elem)
        .and_then(|len| len.checked_add(start))
        .ok_or_else(overflow)?;
    if end > actual {
        return Err(format!(
            "tensor {name:?}: elements {}..{} lie outside its storage of {} elements",
            t.offset,
            t.offset.saturating_add(numel),
            t.storage.numel
        ));
    }
    // Both fit in the entry, whose range was already checked against the file.
    let range = storage.data.start + start as usize..storage.data.start + end as usize;
    let shape = t.shape.iter().map(|&d| d as usize).collect();
    Ok(TensorEntry {
        name,
        dtype,
        shape,
        range,
    })
}

/// Row-major contiguity as torch defines it: strides of size-1 dims do not matter, and an
/// empty tensor is trivially contiguous.
fn is_contiguous(shape: &[u64], stride: &[u64]) -> bool {
    if shape.len() != stride.len() {
        return false;
    }
    if shape.contains(&0) {
        return true;
    }
    let mut expected = 1u64;
    for (&size, &st) in shape.iter().zip(stride).rev() {
        if size != 1 && st != expected {
            return false;
        }
        expected = expected.saturating_mul(size);
    }
    true
}
