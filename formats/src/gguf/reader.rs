//! Memory-mapped GGUF reader. The header is parsed from a byte slice by [`parse`], which checks
//! every count and length against the bytes that remain before allocating, so a hostile or
//! truncated file yields an error, never a panic or a huge allocation.

use super::codec::{Cursor, Elem};
use super::split;
use super::value::{Value, ValueType};
use super::{alignment_of, check_name, pad_to, tensor_n_bytes, MAGIC, MAX_DIMS};
use crate::error::{Error, Result, WithPath};
use crate::tensor::map_file;
use llq_types::keys;
use llq_types::GgmlType;
use memmap2::Mmap;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Smallest possible KV: empty key (u64 length), i32 type, a one-byte value.
const MIN_KV_BYTES: usize = 8 + 4 + 1;
/// Smallest possible tensor info: empty name (u64 length), u32 n_dims, one u64 dim, i32 type,
/// u64 offset.
const MIN_TENSOR_INFO_BYTES: usize = 8 + 4 + 8 + 4 + 8;

#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous row length.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Relative to the start of the data section.
    pub offset: u64,
    /// Which file of a split set holds the data (0 for a single file).
    pub shard: usize,
}

impl TensorInfo {
    /// Product of the dims (saturating; infos read by [`parse`] never overflow).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    /// Bytes of the tensor's data.
    ///
    /// # Panics
    /// If the shape is invalid for the type, which [`parse`] refuses: only a hand-made
    /// `TensorInfo` can panic here.
    pub fn n_bytes(&self) -> u64 {
        match tensor_n_bytes(&self.name, &self.dims, self.ty) {
            Ok(n) => n,
            Err(msg) => panic!("{msg}"),
        }
    }
}

/// Everything in a GGUF header, validated against the whole file's bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedHeader {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
}

/// Parse and validate a whole GGUF file held in `bytes`. Errors are plain messages; `open` adds
/// the path. Public so that fuzzers and tests can drive the parser without files.
pub fn parse(bytes: &[u8]) -> std::result::Result<ParsedHeader, String> {
    let mut c = Cursor::new(bytes);
    let version = read_preamble(&mut c)?;
    let n_tensors = c.read::<u64>()?;
    let n_kv = c.read::<u64>()?;
    let metadata = read_metadata(&mut c, n_kv)?;
    let alignment = alignment_of(&metadata)?;
    let tensors = read_tensor_infos(&mut c, n_tensors)?;
    let data_offset = pad_to(c.pos() as u64, alignment).ok_or("header size overflows")?;
    check_tensor_offsets(&tensors, alignment, data_offset, bytes.len() as u64)?;
    Ok(ParsedHeader {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

/// Magic and version: 2 and 3 share one layout; 1 used u32 counts and is refused.
fn read_preamble(c: &mut Cursor<'_>) -> std::result::Result<u32, String> {
    let magic = c.take(4).map_err(|_| "too short to be a GGUF file")?;
    if magic != MAGIC {
        return Err(format!("bad magic {magic:02x?}, expected \"GGUF\""));
    }
    match c.read::<u32>()? {
        v @ (2 | 3) => Ok(v),
        1 => Err("GGUF version 1 is not supported (only 2 and 3)".into()),
        v if matches!(v.swap_bytes(), 1..=3) => Err(format!(
            "GGUF version {v:#x} looks big-endian, which is not supported"
        )),
        v => Err(format!("unsupported GGUF version {v} (only 2 and 3)")),
    }
}

fn read_metadata(
    c: &mut Cursor<'_>,
    n_kv: u64,
) -> std::result::Result<Vec<(String, Value)>, String> {
    c.check_count(n_kv, MIN_KV_BYTES, "key/value")?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n_kv as usize);
    for i in 0..n_kv {
        let (key, value) = read_kv(c).map_err(|e| format!("key/value #{i}: {e}"))?;
        if !seen.insert(key.clone()) {
            return Err(format!("duplicate key '{key}'"));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn read_kv(c: &mut Cursor<'_>) -> std::result::Result<(String, Value), String> {
    let key = String::decode(c)?;
    let id = c.read::<u32>().map_err(|e| format!("'{key}': {e}"))?;
    let ty = ValueType::from_id(id).ok_or_else(|| format!("'{key}': unknown value type {id}"))?;
    let value = Value::decode(c, ty).map_err(|e| format!("'{key}': {e}"))?;
    Ok((key, value))
}

fn read_tensor_infos(
    c: &mut Cursor<'_>,
    n_tensors: u64,
) -> std::result::Result<Vec<TensorInfo>, String> {
    c.check_count(n_tensors, MIN_TENSOR_INFO_BYTES, "tensor")?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let info = read_tensor_info(c).map_err(|e| format!("tensor info #{i}: {e}"))?;
        if !seen.insert(info.name.clone()) {
            return Err(format!("duplicate tensor name '{}'", info.name));
        }
        out.push(info);
    }
    Ok(out)
}

fn read_tensor_info(c: &mut Cursor<'_>) -> std::result::Result<TensorInfo, String> {
    let name = String::decode(c)?;
    check_name(&name)?;
    let in_name = |e: String| format!("'{name}': {e}");
    let n_dims = c.read::<u32>().map_err(in_name)?;
    if n_dims == 0 || n_dims as usize > MAX_DIMS {
        return Err(in_name(format!("{n_dims} dims, expected 1 to {MAX_DIMS}")));
    }
    let dims = (0..n_dims)
        .map(|_| c.read::<u64>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(in_name)?;
    let id = c.read::<u32>().map_err(in_name)?;
    let ty = GgmlType::from_id(id).ok_or_else(|| in_name(format!("unknown ggml type id {id}")))?;
    let offset = c.read::<u64>().map_err(in_name)?;
    // Checks the dims (overflow, whole blocks) now, so n_bytes() cannot fail later.
    tensor_n_bytes(&name, &dims, ty)?;
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
        shard: 0,
    })
}

/// llama.cpp's rule: each offset is the running sum of the previous tensors' sizes, each padded
/// to the alignment. Then every tensor's bytes must be inside the file.
fn check_tensor_offsets(
    tensors: &[TensorInfo],
    alignment: u64,
    data_offset: u64,
    file_len: u64,
) -> std::result::Result<(), String> {
    let mut expected = 0u64;
    for t in tensors {
        if t.offset != expected {
            return Err(format!(
                "tensor '{}' has offset {}, expected {expected}",
                t.name, t.offset
            ));
        }
        let n_bytes = t.n_bytes();
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|start| start.checked_add(n_bytes))
            .ok_or_else(|| format!("tensor '{}' ends beyond 2^64 bytes", t.name))?;
        if end > file_len {
            return Err(format!(
                "truncated: tensor '{}' needs bytes up to {end} but file has {file_len}",
                t.name
            ));
        }
        expected = pad_to(expected + n_bytes, alignment)
            .ok_or_else(|| format!("tensor '{}' ends beyond 2^64 bytes", t.name))?;
    }
    Ok(())
}

/// A GGUF model: one file, or every file of a split set (see [`super::split`]) read as one.
pub struct GgufFile {
    /// The file opened (the first of a split set).
    pub path: PathBuf,
    pub version: u32,
    /// The first file's key/values (a split set keeps the model's metadata there).
    pub metadata: Vec<(String, Value)>,
    /// Every tensor of every file, in order.
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    shards: Vec<Shard>,
}

/// One file of a GGUF model.
pub struct Shard {
    pub path: PathBuf,
    pub map: Arc<Mmap>,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
}

impl GgufFile {
    /// Open a GGUF. A file that is the first of a split set (`split.count` > 1) brings the
    /// others along, found by name and checked as llama.cpp checks them: each parses, has the
    /// right `split.no`, no tensor name repeats, and the tensors add up to `split.tensors.count`.
    pub fn open(path: &Path) -> Result<GgufFile> {
        let map = map_file(path)?;
        let header = parse(&map).at(path)?;
        let mut file = GgufFile {
            path: path.to_path_buf(),
            version: header.version,
            metadata: header.metadata,
            tensors: header.tensors,
            alignment: header.alignment,
            shards: vec![Shard {
                path: path.to_path_buf(),
                map,
                data_offset: header.data_offset,
            }],
        };
        let count = file.split_u16(keys::split::COUNT)?;
        if count.unwrap_or(0) > 1 {
            file.open_other_shards(usize::from(count.unwrap_or(0)))?;
        }
        Ok(file)
    }

    /// A u16 split key of the first file, or `None` if absent.
    fn split_u16(&self, key: &str) -> Result<Option<u16>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::U16(n)) => Ok(Some(*n)),
            Some(other) => Err(Error::new(
                &self.path,
                format!("{key} is {} but must be u16", other.value_type().name()),
            )),
        }
    }

    fn open_other_shards(&mut self, count: usize) -> Result<()> {
        let no = self.split_u16(keys::split::NO)?.ok_or_else(|| {
            Error::new(
                &self.path,
                format!("has {} but no {}", keys::split::COUNT, keys::split::NO),
            )
        })?;
        if no != 0 {
            return Err(Error::new(
                &self.path,
                format!(
                    "is file {} of a split set of {count}: open the first one",
                    no + 1
                ),
            ));
        }
        let prefix = split::split_prefix(&self.path, 0, count).ok_or_else(|| {
            Error::new(
                &self.path,
                format!(
                    "is the first of {count} split files, but its name does not end in \
                     -00001-of-{count:05}.gguf, so the others cannot be found"
                ),
            )
        })?;
        let mut names: HashSet<String> = self.tensors.iter().map(|t| t.name.clone()).collect();
        for i in 1..count {
            let path = split::shard_path(&prefix, i, count);
            if !path.exists() {
                return Err(Error::new(
                    &path,
                    format!(
                        "missing: file {} of the split set {}",
                        i + 1,
                        self.path.display()
                    ),
                ));
            }
            let map = map_file(&path)?;
            let header = parse(&map).at(&path)?;
            let no = header.metadata.iter().find(|(k, _)| k == keys::split::NO);
            if !matches!(no, Some((_, Value::U16(n))) if usize::from(*n) == i) {
                return Err(Error::new(
                    &path,
                    format!(
                        "{} is {} but the file is number {} of the set",
                        keys::split::NO,
                        no.map_or("missing".to_string(), |(_, v)| format!("{v:?}")),
                        i + 1
                    ),
                ));
            }
            for mut t in header.tensors {
                if !names.insert(t.name.clone()) {
                    return Err(Error::new(
                        &path,
                        format!("tensor '{}' is also in another file of the set", t.name),
                    ));
                }
                t.shard = i;
                self.tensors.push(t);
            }
            self.shards.push(Shard {
                path,
                map,
                data_offset: header.data_offset,
            });
        }
        let total = self.get(keys::split::TENSORS_COUNT).and_then(Value::as_u64);
        if total != Some(self.tensors.len() as u64) {
            return Err(Error::new(
                &self.path,
                format!(
                    "{} says {} tensors but the {count} files hold {}",
                    keys::split::TENSORS_COUNT,
                    total.map_or("nothing".to_string(), |n| n.to_string()),
                    self.tensors.len()
                ),
            ));
        }
        Ok(())
    }

    /// The files of the model (one unless it is a split set).
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The memory map holding `t` and the byte range of its data in it.
    ///
    /// # Panics
    /// If `t` is not one of this model's tensors and lies outside its file.
    pub fn tensor_location(&self, t: &TensorInfo) -> (&Arc<Mmap>, std::ops::Range<usize>) {
        let shard = &self.shards[t.shard];
        let start = shard.data_offset + t.offset;
        let range = usize::try_from(start)
            .ok()
            .zip(usize::try_from(start + t.n_bytes()).ok())
            .filter(|(s, e)| t.n_bytes() == 0 || *e <= shard.map.len() && s <= e)
            .unwrap_or_else(|| {
                panic!("tensor '{}' is not inside {}", t.name, shard.path.display())
            });
        (&shard.map, range.0..range.1)
    }

    /// The tensor's bytes, exactly `t.n_bytes()` long.
    ///
    /// # Panics
    /// If `t` is not one of this model's tensors and lies outside its file.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        if t.n_bytes() == 0 {
            // The data section may start past the end of a file whose tensors are all empty.
            return &[];
        }
        let (map, range) = self.tensor_location(t);
        &map[range]
    }
}
