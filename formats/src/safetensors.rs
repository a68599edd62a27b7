//! safetensors files and sharded indexes.
//!
//! Layout: u64 little-endian header length, a JSON header `{name: {dtype, shape, data_offsets}}`
//! (plus an optional `__metadata__` map), then the data; offsets are relative to the data start.
//! The `safetensors` crate validates the header (offsets contiguous from 0 with no overlap or
//! gap, sizes matching shape × dtype, data ending exactly at the end of the file). We check the
//! framing and each entry ourselves first: the crate adds offsets without overflow checks (a
//! hostile header could panic a debug build), and its errors do not always name the tensor.

use crate::error::{Error, Result};
use crate::tensor::{map_file, DType, MappedTensors, TensorEntry};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const LEN_BYTES: usize = 8;

pub fn open(path: &Path) -> Result<MappedTensors> {
    let map = map_file(path)?;
    let tensors = parse(&map).map_err(|msg| Error::new(path, msg))?;
    Ok(MappedTensors {
        path: path.to_path_buf(),
        map,
        tensors,
    })
}

/// The tensors of a whole safetensors file held in `bytes`, ordered by position in the file,
/// with ranges into `bytes`.
pub fn parse(bytes: &[u8]) -> std::result::Result<Vec<TensorEntry>, String> {
    let header_len = header_len(bytes)?;
    let data_start = LEN_BYTES + header_len;
    let header = parse_header_json(&bytes[LEN_BYTES..data_start])?;
    let data_len = bytes.len() - data_start;
    // Checked before the crate sees the header: its sum of offsets is unchecked, and these
    // messages name the tensor.
    let dtypes = check_entries(&header, data_len)?;

    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).map_err(describe)?;
    metadata
        .offset_keys()
        .into_iter()
        .map(|name| {
            let info = metadata
                .info(&name)
                .ok_or_else(|| format!("tensor {name:?} vanished from the header"))?;
            let dtype = *dtypes
                .get(&name)
                .ok_or_else(|| format!("tensor {name:?} has no dtype"))?;
            let (begin, end) = info.data_offsets;
            Ok(TensorEntry {
                name,
                dtype,
                shape: info.shape.clone(),
                range: data_start + begin..data_start + end,
            })
        })
        .collect()
}

/// The declared header length, checked to fit in the file.
fn header_len(bytes: &[u8]) -> std::result::Result<usize, String> {
    let Some(len_bytes) = bytes.first_chunk::<LEN_BYTES>() else {
        return Err(format!(
            "truncated: {} bytes, too short for the 8-byte header length",
            bytes.len()
        ));
    };
    let len = u64::from_le_bytes(*len_bytes);
    let room = (bytes.len() - LEN_BYTES) as u64;
    if len > room {
        return Err(format!(
            "header length {len} runs past the end of the file ({} bytes; truncated?)",
            bytes.len()
        ));
    }
    Ok(len as usize)
}

fn parse_header_json(header: &[u8]) -> std::result::Result<serde_json::Map<String, Value>, String> {
    let value: Value =
        serde_json::from_slice(header).map_err(|e| format!("header is not valid JSON: {e}"))?;
    match value {
        Value::Object(map) => {
            // A JSON object may repeat a key, and the last one silently wins: refuse instead.
            let keys: TopLevelKeys = serde_json::from_slice(header)
                .map_err(|e| format!("header is not valid JSON: {e}"))?;
            match keys.first_repeat() {
                Some(dup) => Err(format!(
                    "tensor {dup:?} appears twice in the header (duplicate name)"
                )),
                None => Ok(map),
            }
        }
        _ => Err("header is not a JSON object".into()),
    }
}

/// The keys of a JSON object in order, repeats included (values are skipped).
struct TopLevelKeys(Vec<String>);

impl TopLevelKeys {
    /// The first key that appears a second time.
    fn first_repeat(self) -> Option<String> {
        let mut seen = std::collections::HashSet::new();
        self.0.into_iter().find(|k| !seen.insert(k.clone()))
    }
}

/// Just the keys of an index's `weight_map`, to catch a tensor listed twice.
#[derive(serde::Deserialize)]
struct WeightMapKeys {
    weight_map: TopLevelKeys,
}

impl<'de> serde::Deserialize<'de> for TopLevelKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = TopLevelKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<TopLevelKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(k);
                }
                Ok(TopLevelKeys(keys))
            }
        }
        d.deserialize_map(Keys)
    }
}

/// Per tensor: a dtype we support, offsets inside the data section, and a byte count that
/// matches shape × dtype size. Returns each tensor's dtype.
fn check_entries(
    header: &serde_json::Map<String, Value>,
    data_len: usize,
) -> std::result::Result<BTreeMap<String, DType>, String> {
    header
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .map(|(name, entry)| {
            check_entry(entry, data_len)
                .map(|dtype| (name.clone(), dtype))
                .map_err(|e| format!("tensor {name:?}: {e}"))
        })
        .collect()
}

fn check_entry(entry: &Value, data_len: usize) -> std::result::Result<DType, String> {
    let dtype = entry_dtype(entry)?;
    let (begin, end) = entry_offsets(entry)?;
    if begin > end {
        return Err(format!("data_offsets [{begin}, {end}] are reversed"));
    }
    if end > data_len as u64 {
        return Err(format!(
            "data_offsets [{begin}, {end}] run past the end of the data ({data_len} bytes)"
        ));
    }
    let bytes = entry_numel(entry)?
        .checked_mul(dtype.size() as u64)
        .ok_or("shape overflows when multiplied out")?;
    if bytes != end - begin {
        return Err(format!(
            "data_offsets [{begin}, {end}] hold {} bytes but shape and {} need {bytes}",
            end - begin,
            dtype.name()
        ));
    }
    Ok(dtype)
}

fn entry_dtype(entry: &Value) -> std::result::Result<DType, String> {
    let name = entry
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or("no dtype string")?;
    dtype_from_name(name).ok_or_else(|| format!("unsupported dtype {name}"))
}

fn dtype_from_name(name: &str) -> Option<DType> {
    const ALL: [DType; 10] = [
        DType::F64,
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::I32,
        DType::I16,
        DType::I8,
        DType::U8,
        DType::Bool,
    ];
    // DType::name() spells the dtypes as safetensors does.
    ALL.into_iter().find(|d| d.name() == name)
}

fn entry_offsets(entry: &Value) -> std::result::Result<(u64, u64), String> {
    entry
        .get("data_offsets")
        .and_then(Value::as_array)
        .and_then(|a| match a.as_slice() {
            [begin, end] => Some((begin.as_u64()?, end.as_u64()?)),
            _ => None,
        })
        .ok_or_else(|| "data_offsets is not a pair of non-negative integers".into())
}

fn entry_numel(entry: &Value) -> std::result::Result<u64, String> {
    let dims = entry
        .get("shape")
        .and_then(Value::as_array)
        .ok_or("no shape array")?;
    dims.iter().try_fold(1u64, |numel, dim| {
        let dim = dim.as_u64().ok_or("shape holds a non-integer")?;
        numel
            .checked_mul(dim)
            .ok_or_else(|| "shape overflows when multiplied out".to_string())
    })
}

/// The crate's errors, reworded for someone looking at the file rather than the crate.
fn describe(err: safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match err {
        E::InvalidOffset(name) => format!(
            "tensor {name:?}: data_offsets overlap or leave a gap \
             (tensors must be packed back to back from offset 0)"
        ),
        E::TensorInvalidInfo => {
            "a tensor's data_offsets do not match its shape and dtype size".into()
        }
        E::MetadataIncompleteBuffer => {
            "the tensors' data does not end at the end of the file (truncated or trailing bytes)"
                .into()
        }
        E::ValidationOverflow => "a tensor's shape overflows when multiplied out".into(),
        other => format!("invalid safetensors header: {other}"),
    }
}

/// `model.safetensors.index.json`: tensor name -> shard file name.
pub fn read_index(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
    parse_index(&text).map_err(|msg| Error::new(path, msg))
}

/// The `weight_map` of an index file. Shard names must be plain file names next to the index,
/// so a hostile index cannot point the reader at other files.
pub fn parse_index(text: &[u8]) -> std::result::Result<BTreeMap<String, String>, String> {
    let value: Value =
        serde_json::from_slice(text).map_err(|e| format!("index is not valid JSON: {e}"))?;
    let map = value
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or("index has no \"weight_map\" object")?;
    // As in headers, a repeated key would silently keep only its last shard.
    let keys: WeightMapKeys =
        serde_json::from_slice(text).map_err(|e| format!("index is not valid JSON: {e}"))?;
    if let Some(dup) = keys.weight_map.first_repeat() {
        return Err(format!("weight_map lists tensor {dup:?} twice"));
    }
    map.iter()
        .map(|(tensor, shard)| {
            let shard = shard
                .as_str()
                .ok_or_else(|| format!("weight_map[{tensor:?}] is not a string"))?;
            check_shard_name(shard).map_err(|e| format!("weight_map[{tensor:?}]: {e}"))?;
            Ok((tensor.clone(), shard.to_string()))
        })
        .collect()
}

fn check_shard_name(shard: &str) -> std::result::Result<(), String> {
    let bad = shard.is_empty()
        || shard == "."
        || shard.contains("..")
        || shard.contains(['/', '\\', '\0'])
        || Path::new(shard).is_absolute();
    if bad {
        return Err(format!(
            "shard name {shard:?} is not a plain file name next to the index"
        ));
    }
    Ok(())
}
