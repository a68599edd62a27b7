//! Importance matrices (llama.cpp's `llama-imatrix` output): per weight tensor, one importance
//! value per input column, which the quantizers use to weight their rounding error.
//!
//! Two layouts are read:
//!
//! * the legacy `.dat` file, all little-endian: `i32` entry count; per entry an `i32` name
//!   length, the name's bytes, `i32` ncall, `i32` nval and nval `f32` sums; then optionally an
//!   `i32` chunk count, an `i32` dataset-name length and the dataset name. The weight given to the
//!   quantizer is `sum / ncall` (the stored sum itself when ncall is not positive);
//! * the GGUF layout: tensors `NAME.in_sum2` (sums, `ne0 × n_mat`) and `NAME.counts`
//!   (`n_mat` counts), both F32, with `imatrix.chunk_count` and `imatrix.datasets` metadata. The
//!   weight is `sum / round(count)` per matrix, and 1 where the count is zero.
//!
//! Every count and length is checked against the bytes that remain before anything is
//! allocated, names must be UTF-8 and unique, and values must be finite and not negative, so a
//! truncated or corrupt file is an error naming the file, never a panic.

use crate::error::{Result, WithPath};
use crate::gguf;
use crate::tensor::map_file;
use llq_types::GgmlType;
use std::collections::BTreeMap;
use std::path::Path;

/// The per-column weights of an importance matrix, ready for the quantizers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Imatrix {
    /// GGUF tensor name (`blk.0.attn_q.weight`) → one weight per column of that tensor.
    pub entries: BTreeMap<String, Vec<f32>>,
    /// How many chunks of text the statistics were collected on, when the file says.
    pub chunks: Option<u32>,
    /// The text file(s) the statistics were collected on, when the file says.
    pub datasets: Vec<String>,
}

impl Imatrix {
    /// Read a legacy `.dat` or a GGUF imatrix; errors name the file.
    pub fn open(path: &Path) -> Result<Imatrix> {
        let map = map_file(path)?;
        Imatrix::parse(&map).at(path)
    }

    /// Parse a whole file held in `bytes` (the layout is told by the GGUF magic).
    pub fn parse(bytes: &[u8]) -> std::result::Result<Imatrix, String> {
        if bytes.starts_with(gguf::MAGIC) {
            parse_gguf(bytes)
        } else {
            parse_legacy(bytes)
        }
    }
}

/// A little-endian reader over a byte slice that never reads past its end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "truncated: {what} needs {n} bytes at offset {}, {} remain",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn i32(&mut self, what: &str) -> std::result::Result<i32, String> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Smallest legacy entry: name length, empty name, ncall, nval, one value.
const MIN_ENTRY_BYTES: usize = 4 + 4 + 4 + 4;

/// One entry of a legacy `.dat` file as stored: the sums of squared activations of each input
/// column, and the number of chunks (`ncall`) they were summed over.
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyEntry {
    pub name: String,
    pub ncall: i32,
    pub sums: Vec<f32>,
}

/// A legacy `.dat` file as stored (the layout in the module documentation). [`LegacyImatrix::parse`]
/// and [`LegacyImatrix::to_bytes`] are the one description of that layout, read and written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegacyImatrix {
    pub entries: Vec<LegacyEntry>,
    /// The optional trailer: chunk count and dataset name.
    pub trailer: Option<(u32, String)>,
}

impl LegacyImatrix {
    /// Parse and check the layout; the sums are not checked here (see [`Imatrix::parse`]).
    pub fn parse(bytes: &[u8]) -> std::result::Result<LegacyImatrix, String> {
        let mut r = Reader { bytes, pos: 0 };
        let n_entries = r.i32("the entry count")?;
        if n_entries < 1 {
            return Err(format!(
                "not an imatrix file: entry count is {n_entries} (expected at least 1)"
            ));
        }
        let n_entries = n_entries as usize;
        if n_entries > r.remaining() / MIN_ENTRY_BYTES {
            return Err(format!(
                "claims {n_entries} entries (at least {MIN_ENTRY_BYTES} bytes each) but only {} bytes follow",
                r.remaining()
            ));
        }
        let mut entries = Vec::with_capacity(n_entries);
        for i in 0..n_entries {
            let len = r.i32("a name length")?;
            let len = usize::try_from(len)
                .map_err(|_| format!("entry {i}: negative name length {len}"))?;
            let name = r.take(len, "a name")?;
            let name = std::str::from_utf8(name)
                .map_err(|_| format!("entry {i}: name is not valid UTF-8"))?;
            if name.is_empty() || name.contains('\0') {
                return Err(format!("entry {i}: invalid name {name:?}"));
            }
            let ncall = r.i32("a call count")?;
            let nval = r.i32("a value count")?;
            if nval < 1 {
                return Err(format!("entry {name}: value count is {nval}"));
            }
            let nval = nval as usize;
            if nval > r.remaining() / 4 {
                return Err(format!(
                    "entry {name}: claims {nval} values but only {} bytes remain",
                    r.remaining()
                ));
            }
            let sums = r
                .take(nval * 4, "values")?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            entries.push(LegacyEntry {
                name: name.to_string(),
                ncall,
                sums,
            });
        }
        let mut trailer = None;
        if r.remaining() > 0 {
            let n = r.i32("the chunk count")?;
            let chunks = u32::try_from(n).map_err(|_| format!("negative chunk count {n}"))?;
            let len = r.i32("the dataset name length")?;
            let len =
                usize::try_from(len).map_err(|_| format!("negative dataset name length {len}"))?;
            let name = r.take(len, "the dataset name")?;
            trailer = Some((chunks, String::from_utf8_lossy(name).into_owned()));
            if r.remaining() > 0 {
                return Err(format!(
                    "{} unexpected bytes after the dataset name at offset {}",
                    r.remaining(),
                    r.pos
                ));
            }
        }
        Ok(LegacyImatrix { entries, trailer })
    }

    /// The file's bytes. Panics if a count or length does not fit an `i32` (the layout's limit).
    pub fn to_bytes(&self) -> Vec<u8> {
        let i32_of = |n: usize| i32::try_from(n).expect("imatrix count fits an i32");
        let mut b = Vec::new();
        b.extend(i32_of(self.entries.len()).to_le_bytes());
        for e in &self.entries {
            b.extend(i32_of(e.name.len()).to_le_bytes());
            b.extend(e.name.as_bytes());
            b.extend(e.ncall.to_le_bytes());
            b.extend(i32_of(e.sums.len()).to_le_bytes());
            for v in &e.sums {
                b.extend(v.to_le_bytes());
            }
        }
        if let Some((chunks, dataset)) = &self.trailer {
            b.extend(i32_of(*chunks as usize).to_le_bytes());
            b.extend(i32_of(dataset.len()).to_le_bytes());
            b.extend(dataset.as_bytes());
        }
        b
    }
}

fn parse_legacy(bytes: &[u8]) -> std::result::Result<Imatrix, String> {
    let file = LegacyImatrix::parse(bytes)?;
    let mut entries = BTreeMap::new();
    for e in file.entries {
        let ncall = e.ncall;
        let values = weights(&e.name, &e.sums, |_| (ncall > 0).then_some(ncall as f32))?;
        if entries.insert(e.name.clone(), values).is_some() {
            return Err(format!("entry {} appears twice", e.name));
        }
    }
    let (mut chunks, mut datasets) = (None, Vec::new());
    if let Some((n, name)) = file.trailer {
        chunks = Some(n);
        if !name.is_empty() {
            datasets.push(name);
        }
    }
    Ok(Imatrix {
        entries,
        chunks,
        datasets,
    })
}

/// Turn sums into weights: value `i` is `sum / divisor(i)`, or the sum itself where the divisor
/// is `None`. Sums must be finite and not negative.
fn weights(
    name: &str,
    sums: &[f32],
    divisor: impl Fn(usize) -> Option<f32>,
) -> std::result::Result<Vec<f32>, String> {
    sums.iter()
        .enumerate()
        .map(|(i, &sum)| {
            if !sum.is_finite() || sum < 0.0 {
                return Err(format!("entry {name}: value {i} is {sum}"));
            }
            Ok(divisor(i).map_or(sum, |d| sum / d))
        })
        .collect()
}

const IN_SUM2: &str = ".in_sum2";
const COUNTS: &str = ".counts";

fn parse_gguf(bytes: &[u8]) -> std::result::Result<Imatrix, String> {
    let header = gguf::parse(bytes)?;
    let get = |key: &str| {
        header
            .metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    };
    let chunks = match get("imatrix.chunk_count") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("imatrix.chunk_count is not a u32")?,
        ),
    };
    let mut datasets = Vec::new();
    if let Some(gguf::Array::String(names)) = get("imatrix.datasets").and_then(|v| v.as_array()) {
        datasets.extend(names.iter().cloned());
    }
    let data = |t: &gguf::TensorInfo| -> std::result::Result<&[u8], String> {
        if t.ty != GgmlType::F32 {
            return Err(format!("tensor {} is {}, expected F32", t.name, t.ty));
        }
        let start = header.data_offset + t.offset;
        usize::try_from(start)
            .ok()
            .zip(usize::try_from(start + t.n_bytes()).ok())
            .and_then(|(s, e)| bytes.get(s..e))
            .ok_or_else(|| format!("tensor {} lies outside the file", t.name))
    };
    let mut entries = BTreeMap::new();
    for sums in &header.tensors {
        let Some(name) = sums.name.strip_suffix(IN_SUM2) else {
            continue;
        };
        let counts_name = format!("{name}{COUNTS}");
        let counts = header
            .tensors
            .iter()
            .find(|t| t.name == counts_name)
            .ok_or_else(|| format!("tensor {} has no {counts_name}", sums.name))?;
        let counts: Vec<f32> = data(counts)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).round())
            .collect();
        let raw: Vec<f32> = data(sums)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let nval = raw.len();
        if counts.is_empty() || nval == 0 || !nval.is_multiple_of(counts.len()) {
            return Err(format!(
                "entry {name}: {nval} sums do not split into {} matrices",
                counts.len()
            ));
        }
        if let Some(c) = counts.iter().find(|c| !c.is_finite() || **c < 0.0) {
            return Err(format!("entry {name}: count {c}"));
        }
        let ne0 = nval / counts.len();
        let mut values = weights(name, &raw, |i| Some(counts[i / ne0]))?;
        // A matrix that saw no input gets neutral weights.
        for (chunk, &c) in values.chunks_mut(ne0).zip(&counts) {
            if c == 0.0 {
                chunk.fill(1.0);
            }
        }
        entries.insert(name.to_string(), values);
    }
    if entries.is_empty() {
        return Err("GGUF file holds no *.in_sum2 imatrix tensors".into());
    }
    Ok(Imatrix {
        entries,
        chunks,
        datasets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(entries: &[(&str, i32, &[f32])], trailer: Option<(i32, &str)>) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((entries.len() as i32).to_le_bytes());
        for (name, ncall, values) in entries {
            b.extend((name.len() as i32).to_le_bytes());
            b.extend(name.as_bytes());
            b.extend(ncall.to_le_bytes());
            b.extend((values.len() as i32).to_le_bytes());
            for v in *values {
                b.extend(v.to_le_bytes());
            }
        }
        if let Some((chunks, dataset)) = trailer {
            b.extend(chunks.to_le_bytes());
            b.extend((dataset.len() as i32).to_le_bytes());
            b.extend(dataset.as_bytes());
        }
        b
    }

    #[test]
    fn parses_legacy_and_divides_by_ncall() {
        let bytes = legacy(
            &[
                ("blk.0.attn_q.weight", 4, &[4.0, 2.0, 1.0]),
                ("output.weight", 0, &[3.0, 5.0]),
            ],
            Some((7, "wiki.train.raw")),
        );
        let m = Imatrix::parse(&bytes).unwrap();
        assert_eq!(m.entries["blk.0.attn_q.weight"], vec![1.0, 0.5, 0.25]);
        assert_eq!(m.entries["output.weight"], vec![3.0, 5.0]);
        assert_eq!(m.chunks, Some(7));
        assert_eq!(m.datasets, vec!["wiki.train.raw".to_string()]);
    }

    #[test]
    fn writer_is_the_readers_layout() {
        let entries: &[(&str, i32, &[f32])] = &[("blk.0.ffn_down.weight", 3, &[0.5, 6.0, 0.0])];
        for trailer in [None, Some((3, "train.txt")), Some((0, ""))] {
            let bytes = legacy(entries, trailer);
            let file = LegacyImatrix::parse(&bytes).unwrap();
            assert_eq!(file.to_bytes(), bytes);
            assert_eq!(
                file.trailer,
                trailer.map(|(n, d)| (n as u32, d.to_string()))
            );
            let m = Imatrix::parse(&file.to_bytes()).unwrap();
            assert_eq!(
                m.entries["blk.0.ffn_down.weight"],
                vec![0.5 / 3.0, 2.0, 0.0]
            );
        }
    }

    #[test]
    fn trailer_is_optional() {
        let bytes = legacy(&[("a", 1, &[1.0])], None);
        let m = Imatrix::parse(&bytes).unwrap();
        assert_eq!(m.chunks, None);
        assert!(m.datasets.is_empty());
        let bytes = legacy(&[("a", 1, &[1.0])], Some((3, "")));
        assert_eq!(Imatrix::parse(&bytes).unwrap().chunks, Some(3));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let entries: &[(&str, i32, &[f32])] =
            &[("blk.0.ffn_up.weight", 2, &[1.0, 2.0]), ("x", 1, &[3.0])];
        let bytes = legacy(entries, Some((5, "data.txt")));
        let no_trailer = legacy(entries, None).len();
        for n in 0..bytes.len() {
            let r = Imatrix::parse(&bytes[..n]);
            if n == no_trailer {
                assert!(r.is_ok(), "prefix {n}");
            } else {
                assert!(r.is_err(), "prefix {n} parsed");
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Imatrix::parse(&longer)
            .unwrap_err()
            .contains("unexpected bytes"));
    }

    #[test]
    fn lying_counts_are_refused_before_allocating() {
        let mut bytes = legacy(&[("a", 1, &[1.0])], None);
        bytes[..4].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(Imatrix::parse(&bytes).unwrap_err().contains("claims"));
        for bad in [0i32, -1] {
            bytes[..4].copy_from_slice(&bad.to_le_bytes());
            assert!(Imatrix::parse(&bytes).is_err());
        }
        // nval
        let mut bytes = legacy(&[("a", 1, &[1.0])], None);
        let at = 4 + 4 + 1 + 4;
        for bad in [i32::MAX, -5, 0, 2i32] {
            bytes[at..at + 4].copy_from_slice(&bad.to_le_bytes());
            assert!(Imatrix::parse(&bytes).is_err(), "nval {bad}");
        }
        // name length
        let mut bytes = legacy(&[("a", 1, &[1.0])], None);
        for bad in [i32::MAX, -1, 100] {
            bytes[4..8].copy_from_slice(&bad.to_le_bytes());
            assert!(Imatrix::parse(&bytes).is_err(), "name length {bad}");
        }
    }

    #[test]
    fn refuses_bad_names_and_values() {
        let mut bytes = legacy(&[("ab", 1, &[1.0])], None);
        bytes[8] = 0xff;
        assert!(Imatrix::parse(&bytes).unwrap_err().contains("UTF-8"));
        let dup = legacy(&[("a", 1, &[1.0]), ("a", 1, &[1.0])], None);
        assert!(Imatrix::parse(&dup).unwrap_err().contains("twice"));
        for v in [f32::NAN, f32::INFINITY, -1.0] {
            let bytes = legacy(&[("a", 1, &[1.0, v])], None);
            assert!(Imatrix::parse(&bytes).is_err(), "value {v}");
        }
        assert!(Imatrix::parse(&[]).is_err());
    }

    #[test]
    fn parses_gguf_layout() {
        use crate::gguf::{GgufWriter, TensorSpec, Value};
        let kv = vec![
            ("imatrix.chunk_count".to_string(), Value::U32(9)),
            (
                "imatrix.datasets".to_string(),
                Value::Array(crate::gguf::Array::String(vec!["d.txt".into()])),
            ),
        ];
        let specs = vec![
            TensorSpec {
                name: "blk.0.attn_k.weight.in_sum2".into(),
                dims: vec![2, 2],
                ty: GgmlType::F32,
            },
            TensorSpec {
                name: "blk.0.attn_k.weight.counts".into(),
                dims: vec![1, 2],
                ty: GgmlType::F32,
            },
        ];
        let mut w = GgufWriter::new(Vec::new(), &kv, &specs).unwrap();
        let f = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        w.write_tensor_data(&f(&[4.0, 8.0, 3.0, 3.0])).unwrap();
        w.write_tensor_data(&f(&[4.0, 0.0])).unwrap();
        let bytes = w.finish().unwrap();
        let m = Imatrix::parse(&bytes).unwrap();
        assert_eq!(m.entries["blk.0.attn_k.weight"], vec![1.0, 2.0, 1.0, 1.0]);
        assert_eq!(m.chunks, Some(9));
        assert_eq!(m.datasets, vec!["d.txt".to_string()]);
        // The writer pads the end; a cut inside any tensor's data is an error.
        let h = gguf::parse(&bytes).unwrap();
        let last = h
            .tensors
            .iter()
            .map(|t| t.offset + t.n_bytes())
            .max()
            .unwrap();
        for n in 0..(h.data_offset + last) as usize {
            assert!(Imatrix::parse(&bytes[..n]).is_err(), "prefix {n}");
        }
    }
}
