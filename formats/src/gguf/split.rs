//! Split GGUF sets, as llama.cpp's `gguf-split` writes them and its model loader reads them:
//! files `PREFIX-00001-of-0000N.gguf` …, each a complete GGUF with its own tensor infos and data
//! (alignment 32), the model's metadata only in the first, and in every file `split.no` (u16,
//! from 0), `split.count` (u16) and `split.tensors.count` (i32, the whole set's).

use super::Value;
use llq_types::keys;
use std::path::{Path, PathBuf};

/// The most files a set can have (`split.count` is a u16).
pub const MAX_SHARDS: usize = u16::MAX as usize;

/// When a writer starts the next file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitLimit {
    /// At most this many tensors per file (gguf-split `--split-max-tensors`).
    Tensors(usize),
    /// At most this many bytes of tensor data per file, each tensor padded to 32 bytes, headers
    /// not counted (gguf-split `--split-max-size`); a tensor larger than that gets a file of its
    /// own, so every file holds at least one tensor.
    Bytes(u64),
    /// Exactly these tensor counts, file by file (another set's split, kept).
    Counts(Vec<usize>),
}

/// The file `no` (from 0) of a set of `count` with this prefix: `PREFIX-%05d-of-%05d.gguf`.
pub fn shard_path(prefix: &Path, no: usize, count: usize) -> PathBuf {
    let mut name = prefix.as_os_str().to_os_string();
    name.push(format!("-{:05}-of-{count:05}.gguf", no + 1));
    PathBuf::from(name)
}

/// The prefix of `path` if it is file `no` of a set of `count` (llama.cpp's
/// `llama_split_prefix`: the name must end exactly so).
pub fn split_prefix(path: &Path, no: usize, count: usize) -> Option<PathBuf> {
    let suffix = format!("-{:05}-of-{count:05}.gguf", no + 1);
    let s = path.to_str()?;
    let prefix = s.strip_suffix(&suffix)?;
    (!prefix.is_empty()).then(|| PathBuf::from(prefix))
}

/// How many of `sizes` (each tensor's data bytes, in file order) go in each file under `limit`.
pub fn plan(sizes: &[u64], limit: &SplitLimit) -> Vec<usize> {
    if let SplitLimit::Counts(counts) = limit {
        if counts.iter().sum::<usize>() == sizes.len() {
            return counts.clone();
        }
    }
    let mut counts: Vec<usize> = Vec::new();
    let mut current = (0usize, 0u64);
    for &size in sizes {
        let padded = size.div_ceil(32) * 32;
        let full = current.0 > 0
            && match limit {
                SplitLimit::Tensors(n) => current.0 >= (*n).max(1),
                SplitLimit::Bytes(max) => current.1 + padded > *max,
                // Counts that do not add up (never from a set read back): one file.
                SplitLimit::Counts(_) => false,
            };
        if full {
            counts.push(current.0);
            current = (0, 0);
        }
        current = (current.0 + 1, current.1 + padded);
    }
    if current.0 > 0 || counts.is_empty() {
        counts.push(current.0);
    }
    counts
}

/// The three keys every file of a set carries.
pub fn split_keys(no: usize, count: usize, total_tensors: usize) -> Vec<(String, Value)> {
    let u16_of = |n: usize| u16::try_from(n).expect("at most MAX_SHARDS files");
    vec![
        (keys::split::NO.into(), Value::U16(u16_of(no))),
        (keys::split::COUNT.into(), Value::U16(u16_of(count))),
        (
            keys::split::TENSORS_COUNT.into(),
            Value::I32(i32::try_from(total_tensors).unwrap_or(i32::MAX)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = shard_path(Path::new("/m/model"), 1, 3);
        assert_eq!(p, Path::new("/m/model-00002-of-00003.gguf"));
        assert_eq!(split_prefix(&p, 1, 3), Some(PathBuf::from("/m/model")));
        assert_eq!(split_prefix(&p, 0, 3), None);
        assert_eq!(split_prefix(Path::new("-00001-of-00001.gguf"), 0, 1), None);
    }

    #[test]
    fn plans_follow_gguf_split() {
        assert_eq!(plan(&[1; 5], &SplitLimit::Tensors(2)), [2, 2, 1]);
        // 33 bytes pad to 64: 64 + 64 > 100 starts a new file.
        assert_eq!(plan(&[33, 33, 10], &SplitLimit::Bytes(100)), [1, 2]);
        assert_eq!(plan(&[32, 32, 32], &SplitLimit::Bytes(64)), [2, 1]);
        // An oversized tensor gets a file of its own, also the first.
        assert_eq!(plan(&[500, 10, 500], &SplitLimit::Bytes(100)), [1, 1, 1]);
        assert_eq!(plan(&[], &SplitLimit::Tensors(2)), [0]);
        assert_eq!(plan(&[1; 3], &SplitLimit::Counts(vec![1, 2])), [1, 2]);
    }
}
