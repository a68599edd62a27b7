//! safetensors files written by hand (header length, JSON header, data), good and damaged.

use llq_formats::safetensors;
use llq_formats::DType;
use std::path::{Path, PathBuf};

/// A safetensors file image: little-endian header length, header JSON, then `data`.
fn image(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The error `open` gives for `bytes`, checked to name the file.
fn open_err(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.safetensors", bytes);
    let err = safetensors::open(&path)
        .err()
        .expect("should be refused")
        .to_string();
    assert!(err.contains("bad.safetensors"), "{err}");
    err
}

const TWO_TENSORS: &str = r#"{"__metadata__":{"format":"pt"},
    "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},
    "a":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}"#;

#[test]
fn reads_tensors_in_file_order() {
    let data: Vec<u8> = (0u8..12).collect();
    let bytes = image(TWO_TENSORS, &data);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "model.safetensors", &bytes);
    let file = safetensors::open(&path).unwrap();
    let start = 8 + TWO_TENSORS.len();

    let names: Vec<_> = file.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let a = file.get("a").unwrap();
    assert_eq!((a.dtype, a.shape.as_slice()), (DType::BF16, &[1, 2][..]));
    assert_eq!(a.range, start..start + 4);
    assert_eq!(file.data(a), &[0, 1, 2, 3]);
    let b = file.get("b").unwrap();
    assert_eq!((b.dtype, b.shape.as_slice()), (DType::F32, &[2][..]));
    assert_eq!(file.data(b), &data[4..12]);
}

#[test]
fn every_supported_dtype_and_empty_tensors() {
    let kinds = [
        ("F64", DType::F64),
        ("F32", DType::F32),
        ("F16", DType::F16),
        ("BF16", DType::BF16),
        ("I64", DType::I64),
        ("I32", DType::I32),
        ("I16", DType::I16),
        ("I8", DType::I8),
        ("U8", DType::U8),
        ("BOOL", DType::Bool),
    ];
    let mut entries = Vec::new();
    let mut offset = 0;
    for (i, (name, dtype)) in kinds.iter().enumerate() {
        let end = offset + dtype.size();
        entries.push(format!(
            r#""t{i}":{{"dtype":"{name}","shape":[1],"data_offsets":[{offset},{end}]}}"#
        ));
        offset = end;
    }
    entries.push(format!(
        r#""empty":{{"dtype":"F32","shape":[0,3],"data_offsets":[{offset},{offset}]}}"#
    ));
    let header = format!("{{{}}}", entries.join(","));
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "all.safetensors",
        &image(&header, &vec![0; offset]),
    );
    let file = safetensors::open(&path).unwrap();
    for (i, (_, dtype)) in kinds.iter().enumerate() {
        assert_eq!(file.get(&format!("t{i}")).unwrap().dtype, *dtype);
    }
    assert_eq!(file.get("empty").unwrap().numel(), 0);
}

#[test]
fn empty_header_object_has_no_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "none.safetensors", &image("{}", &[]));
    assert!(safetensors::open(&path).unwrap().tensors.is_empty());
}

#[test]
fn truncated_before_header_length() {
    let err = open_err(&[1, 0, 0]);
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn header_length_past_end() {
    let mut bytes = image(TWO_TENSORS, &[0; 12]);
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = open_err(&bytes);
    assert!(
        err.contains("header length") && err.contains("past the end"),
        "{err}"
    );

    let mut cut = image(TWO_TENSORS, &[]);
    cut.truncate(40);
    let err = open_err(&cut);
    assert!(err.contains("past the end"), "{err}");
}

#[test]
fn bad_json() {
    let err = open_err(&image(r#"{"a": {"dtype": "F32""#, &[]));
    assert!(err.contains("not valid JSON"), "{err}");
    let err = open_err(&image("[1, 2]", &[]));
    assert!(err.contains("not a JSON object"), "{err}");
}

#[test]
fn unsupported_dtype_names_tensor_and_dtype() {
    for dtype in ["F8_E4M3", "U16", "Q4"] {
        let header = format!(r#"{{"w":{{"dtype":"{dtype}","shape":[2],"data_offsets":[0,2]}}}}"#);
        let err = open_err(&image(&header, &[0; 2]));
        assert!(err.contains("\"w\"") && err.contains(dtype), "{err}");
    }
}

#[test]
fn overlapping_offsets() {
    let header = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},
        "b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#;
    let err = open_err(&image(header, &[0; 6]));
    assert!(err.contains("overlap"), "{err}");
}

#[test]
fn gap_between_tensors() {
    let header = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},
        "b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#;
    let err = open_err(&image(header, &[0; 6]));
    assert!(err.contains("gap"), "{err}");
}

#[test]
fn offsets_past_the_data() {
    let header = r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#;
    let err = open_err(&image(header, &[0; 4]));
    assert!(
        err.contains("\"a\"") && err.contains("past the end of the data"),
        "{err}"
    );
}

#[test]
fn huge_offsets_do_not_overflow() {
    // Offsets near u64::MAX: must be an error, not an arithmetic overflow.
    let big = u64::MAX - 4;
    let header = format!(r#"{{"a":{{"dtype":"U8","shape":[{big}],"data_offsets":[0,{big}]}}}}"#);
    let err = open_err(&image(&header, &[0; 4]));
    assert!(err.contains("past the end of the data"), "{err}");
}

#[test]
fn offsets_summing_past_u64_do_not_panic() {
    // Valid-looking tensors whose data would end at ~2^64: safetensors 0.8's read_metadata
    // overflows adding the header length to that end (a panic in debug builds), so the bound
    // check has to come first.
    let size = (1u64 << 61) - 1;
    let entries: Vec<String> = (0..8u64)
        .map(|i| {
            let (begin, end) = (i * size, (i + 1) * size);
            format!(r#""t{i}":{{"dtype":"U8","shape":[{size}],"data_offsets":[{begin},{end}]}}"#)
        })
        .collect();
    let header = format!("{{{}}}", entries.join(","));
    let err = open_err(&image(&header, &[]));
    assert!(err.contains("past the end of the data"), "{err}");
}

#[test]
fn reversed_offsets_and_size_mismatch() {
    let header = r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}"#;
    let err = open_err(&image(header, &[0; 4]));
    assert!(err.contains("reversed"), "{err}");

    let header = r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
    let err = open_err(&image(header, &[0; 8]));
    assert!(err.contains("\"a\"") && err.contains("need 12"), "{err}");
}

#[test]
fn trailing_bytes_after_data() {
    let header = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
    let err = open_err(&image(header, &[0; 5]));
    assert!(err.contains("does not end at the end of the file"), "{err}");
}

#[test]
fn malformed_entries() {
    let err = open_err(&image(r#"{"a":{"shape":[1],"data_offsets":[0,1]}}"#, &[0]));
    assert!(err.contains("no dtype"), "{err}");
    let err = open_err(&image(
        r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}"#,
        &[0],
    ));
    assert!(err.contains("data_offsets"), "{err}");
    let err = open_err(&image(
        r#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#,
        &[0],
    ));
    assert!(err.contains("shape"), "{err}");
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = safetensors::open(&dir.path().join("gone.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("gone.safetensors"), "{err}");
}
