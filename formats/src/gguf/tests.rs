//! Unit tests: value round trips, layout arithmetic, the streaming writer, and every way a
//! header can be malformed.

use super::codec::Elem;
use super::*;
use std::io;

fn kv(key: &str, value: Value) -> (String, Value) {
    (key.to_string(), value)
}

fn spec(name: &str, dims: &[u64], ty: GgmlType) -> TensorSpec {
    TensorSpec {
        name: name.to_string(),
        dims: dims.to_vec(),
        ty,
    }
}

/// One KV of every scalar type and one array of every element type, including empty ones.
fn every_value() -> Vec<(String, Value)> {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        kv("u8", Value::U8(200)),
        kv("i8", Value::I8(-100)),
        kv("u16", Value::U16(60000)),
        kv("i16", Value::I16(-30000)),
        kv("u32", Value::U32(4_000_000_000)),
        kv("i32", Value::I32(-2_000_000_000)),
        kv("f32", Value::F32(1e-5)),
        kv("bool", Value::Bool(true)),
        kv("string", Value::String("héllo ▁world".into())),
        kv("u64", Value::U64(u64::MAX)),
        kv("i64", Value::I64(i64::MIN)),
        kv("f64", Value::F64(-0.1)),
        kv("a.u8", Value::Array(Array::U8(vec![0, 255]))),
        kv("a.i8", Value::Array(Array::I8(vec![-128, 127]))),
        kv("a.u16", Value::Array(Array::U16(vec![1, 65535]))),
        kv("a.i16", Value::Array(Array::I16(vec![-1, 2]))),
        kv("a.u32", Value::Array(Array::U32(vec![7]))),
        kv("a.i32", Value::Array(Array::I32(vec![1, 2, 3, 6]))),
        kv("a.f32", Value::Array(Array::F32(vec![0.0, -1.5, 3.25]))),
        kv("a.bool", Value::Array(Array::Bool(vec![true, false]))),
        kv(
            "a.string",
            Value::Array(Array::String(s(&["<s>", "", "▁a b"]))),
        ),
        kv("a.u64", Value::Array(Array::U64(vec![u64::MAX]))),
        kv("a.i64", Value::Array(Array::I64(vec![-5]))),
        kv("a.f64", Value::Array(Array::F64(vec![1e300]))),
        kv("a.empty", Value::Array(Array::String(vec![]))),
    ]
}

fn sample_tensors() -> Vec<TensorSpec> {
    vec![
        spec("a.f32", &[4, 3], GgmlType::F32),
        spec("b.f16", &[5], GgmlType::F16),
        spec("c.q8_0", &[64, 2], GgmlType::Q8_0),
    ]
}

/// Deterministic, tensor-specific data bytes.
fn data_for(index: usize, n_bytes: u64) -> Vec<u8> {
    (0..n_bytes)
        .map(|i| (i as u8).wrapping_mul(31) ^ index as u8)
        .collect()
}

/// Write a file, giving the data in chunks of `chunk` bytes.
fn write_file(metadata: &[(String, Value)], tensors: &[TensorSpec], chunk: usize) -> Vec<u8> {
    let all: Vec<u8> = tensors
        .iter()
        .enumerate()
        .flat_map(|(i, t)| data_for(i, tensor_n_bytes(&t.name, &t.dims, t.ty).unwrap()))
        .collect();
    let mut w = GgufWriter::new(Vec::new(), metadata, tensors).unwrap();
    for piece in all.chunks(chunk.max(1)) {
        w.write_tensor_data(piece).unwrap();
    }
    w.finish().unwrap()
}

fn sample_file() -> Vec<u8> {
    write_file(&every_value(), &sample_tensors(), 1000)
}

/// The error message `parse` gives for `bytes`.
fn parse_err(bytes: &[u8]) -> String {
    match parse(bytes) {
        Ok(h) => panic!("expected an error, parsed {h:?}"),
        Err(e) => e,
    }
}

fn assert_err_contains(bytes: &[u8], needle: &str) {
    let e = parse_err(bytes);
    assert!(
        e.contains(needle),
        "error '{e}' does not mention '{needle}'"
    );
}

// ---- values ----

#[test]
fn every_value_type_round_trips_in_order() {
    let metadata = every_value();
    let header = parse(&write_file(&metadata, &[], 1)).unwrap();
    assert_eq!(header.metadata, metadata);
    assert_eq!(header.version, 3);
    assert!(header.tensors.is_empty());
}

#[test]
fn value_types_have_spec_ids_and_names() {
    for (id, name) in [(0, "UINT8"), (6, "FLOAT32"), (9, "ARRAY"), (12, "FLOAT64")] {
        let ty = ValueType::from_id(id).unwrap();
        assert_eq!((ty.id(), ty.name()), (id, name));
    }
    assert_eq!(ValueType::from_id(13), None);
    for (_, v) in every_value() {
        assert_eq!(
            ValueType::from_id(v.value_type().id()),
            Some(v.value_type())
        );
    }
}

#[test]
fn as_u64_takes_any_fitting_integer() {
    assert_eq!(Value::U8(3).as_u64(), Some(3));
    assert_eq!(Value::U16(3).as_u64(), Some(3));
    assert_eq!(Value::U32(3).as_u64(), Some(3));
    assert_eq!(Value::U64(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(Value::I8(3).as_u64(), Some(3));
    assert_eq!(Value::I16(3).as_u64(), Some(3));
    assert_eq!(Value::I32(3).as_u64(), Some(3));
    assert_eq!(Value::I64(3).as_u64(), Some(3));
    assert_eq!(Value::I32(-1).as_u64(), None);
    assert_eq!(Value::I64(i64::MIN).as_u64(), None);
    assert_eq!(Value::F32(1.0).as_u64(), None);
    assert_eq!(Value::Bool(true).as_u64(), None);
}

#[test]
fn other_accessors() {
    assert_eq!(Value::F32(0.5).as_f32(), Some(0.5));
    assert_eq!(Value::F64(0.25).as_f32(), Some(0.25));
    assert_eq!(Value::U32(1).as_f32(), None);
    assert_eq!(Value::String("x".into()).as_str(), Some("x"));
    assert_eq!(Value::U8(1).as_str(), None);
    let a = Array::I32(vec![1, 2]);
    assert_eq!(Value::Array(a.clone()).as_array(), Some(&a));
    assert_eq!(
        (a.len(), a.is_empty(), a.elem_type()),
        (2, false, ValueType::I32)
    );
    assert!(Array::Bool(vec![]).is_empty());
    assert_eq!(Value::Array(a).value_type(), ValueType::Array);
}

#[test]
fn to_json() {
    use serde_json::json;
    assert_eq!(Value::U32(7).to_json(), json!(7));
    assert_eq!(Value::I8(-7).to_json(), json!(-7));
    assert_eq!(Value::F32(0.5).to_json(), json!(0.5));
    assert_eq!(Value::F32(1e-5).to_json(), json!(f64::from(1e-5f32)));
    assert_eq!(Value::Bool(false).to_json(), json!(false));
    assert_eq!(Value::String("s".into()).to_json(), json!("s"));
    let strings = Array::String(vec!["a".into(), "b".into()]);
    assert_eq!(Value::Array(strings).to_json(), json!(["a", "b"]));
    assert_eq!(Value::Array(Array::F32(vec![1.5])).to_json(), json!([1.5]));
}

// ---- layout and writer ----

#[test]
fn layout_arithmetic_default_alignment() {
    let tensors = [
        spec("a", &[5], GgmlType::F32),
        spec("b", &[3], GgmlType::F16),
    ];
    // Header: 4 magic + 4 version + 8 + 8 counts, then per tensor 8 + 1 name, 4 n_dims,
    // 8 dim, 4 type, 8 offset = 33: 90 bytes, padded to 96. Data: 20 -> 32, 6 -> 32.
    let l = layout(&[], &tensors).unwrap();
    let expected = Layout {
        alignment: 32,
        data_offset: 96,
        offsets: vec![0, 32],
        file_size: 160,
    };
    assert_eq!(l, expected);
}

#[test]
fn layout_arithmetic_custom_alignment() {
    let metadata = [kv(ALIGNMENT_KEY, Value::U32(64))];
    let tensors = [
        spec("a", &[5], GgmlType::F32),
        spec("b", &[3], GgmlType::F16),
    ];
    // The KV adds 8 + 17 key, 4 type, 4 value = 33 bytes: 123, padded to 128.
    let l = layout(&metadata, &tensors).unwrap();
    assert_eq!((l.alignment, l.data_offset), (64, 128));
    assert_eq!((l.offsets, l.file_size), (vec![0, 64], 256));
}

#[test]
fn layout_without_tensors_ends_at_the_data_section() {
    let l = layout(&[], &[]).unwrap();
    assert_eq!(
        l,
        Layout {
            alignment: 32,
            data_offset: 32,
            offsets: vec![],
            file_size: 32
        }
    );
    assert_eq!(write_file(&[], &[], 1).len(), 32);
}

#[test]
fn written_file_matches_layout_and_reads_back() {
    let (metadata, tensors) = (every_value(), sample_tensors());
    let bytes = sample_file();
    let l = layout(&metadata, &tensors).unwrap();
    assert_eq!(bytes.len() as u64, l.file_size);
    let h = parse(&bytes).unwrap();
    assert_eq!((h.alignment, h.data_offset), (l.alignment, l.data_offset));
    for (i, (info, t)) in h.tensors.iter().zip(&tensors).enumerate() {
        assert_eq!((&info.name, &info.dims, info.ty), (&t.name, &t.dims, t.ty));
        assert_eq!(info.offset, l.offsets[i]);
        let start = (h.data_offset + info.offset) as usize;
        let data = &bytes[start..start + info.n_bytes() as usize];
        assert_eq!(data, data_for(i, info.n_bytes()));
    }
    // Padding between and after tensors is zeros.
    assert!(bytes[bytes.len() - 12..].iter().all(|&b| b == 0));
}

#[test]
fn tensor_sizes() {
    let info = TensorInfo {
        name: "t".into(),
        dims: vec![64, 3, 2],
        ty: GgmlType::Q8_0,
        offset: 0,
        shard: 0,
    };
    assert_eq!((info.n_elements(), info.n_bytes()), (384, 2 * 34 * 6));
}

#[test]
fn chunk_size_does_not_change_output() {
    let whole = sample_file();
    for chunk in [1, 7, 33, 100_000] {
        assert_eq!(
            write_file(&every_value(), &sample_tensors(), chunk),
            whole,
            "chunk {chunk}"
        );
    }
}

#[test]
fn empty_tensors_anywhere() {
    let tensors = [
        spec("e0", &[0], GgmlType::F32),
        spec("a", &[3], GgmlType::F32),
        spec("e1", &[32, 0], GgmlType::Q8_0),
        spec("b", &[2], GgmlType::F16),
        spec("e2", &[0, 5], GgmlType::F16),
    ];
    let bytes = write_file(&[], &tensors, 5);
    let h = parse(&bytes).unwrap();
    let offsets: Vec<u64> = h.tensors.iter().map(|t| t.offset).collect();
    assert_eq!(offsets, [0, 0, 32, 32, 64]);
    assert_eq!(bytes.len() as u64, layout(&[], &tensors).unwrap().file_size);
}

#[test]
fn too_much_data_is_refused_without_writing() {
    let tensors = [spec("a", &[3], GgmlType::F32)];
    let mut w = GgufWriter::new(Vec::new(), &[], &tensors).unwrap();
    w.write_tensor_data(&[1; 8]).unwrap();
    let e = w.write_tensor_data(&[1; 5]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    w.write_tensor_data(&[1; 4]).unwrap();
    assert!(w.write_tensor_data(&[1]).is_err());
    assert!(w.write_tensor_data(&[]).is_ok());
    assert!(parse(&w.finish().unwrap()).is_ok());
}

#[test]
fn finish_refuses_incomplete_tensors() {
    let tensors = [
        spec("a", &[3], GgmlType::F32),
        spec("b", &[3], GgmlType::F32),
    ];
    let mut w = GgufWriter::new(Vec::new(), &[], &tensors).unwrap();
    w.write_tensor_data(&[0; 13]).unwrap();
    let e = w.finish().unwrap_err().to_string();
    assert!(e.contains("'b' is incomplete: 1 of 12"), "{e}");
}

/// Metadata and tensors a writer must refuse, and a piece of the expected message.
type WriterCase = (Vec<(String, Value)>, Vec<TensorSpec>, &'static str);

#[test]
fn writer_refuses_invalid_specs() {
    let f32 = |name: &str, dims: &[u64]| spec(name, dims, GgmlType::F32);
    let long = "x".repeat(MAX_NAME_LEN + 1);
    let align = |v: Value| vec![kv(ALIGNMENT_KEY, v)];
    let cases: Vec<WriterCase> = vec![
        (
            vec![],
            vec![f32("a", &[1]), f32("a", &[2])],
            "duplicate tensor name 'a'",
        ),
        (
            vec![kv("k", Value::U8(1)), kv("k", Value::U8(2))],
            vec![],
            "duplicate key 'k'",
        ),
        (vec![], vec![f32(&long, &[1])], "longer than the 63"),
        (
            vec![],
            vec![spec("q", &[48], GgmlType::Q8_0)],
            "not a multiple of Q8_0's block size 32",
        ),
        (vec![], vec![f32("a", &[])], "0 dims"),
        (vec![], vec![f32("a", &[1; 5])], "5 dims"),
        (
            vec![],
            vec![f32("a", &[1 << 32, 1 << 32])],
            "too many elements",
        ),
        (align(Value::U32(48)), vec![], "not a power of two"),
        (align(Value::U32(0)), vec![], "not a power of two"),
        (align(Value::U64(32)), vec![], "expected UINT32"),
    ];
    for (metadata, tensors, needle) in cases {
        let e = layout(&metadata, &tensors).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(needle), "'{e}' lacks '{needle}'");
        let e = GgufWriter::new(Vec::new(), &metadata, &tensors)
            .err()
            .unwrap();
        assert!(e.to_string().contains(needle), "'{e}' lacks '{needle}'");
    }
    assert!(layout(&[], &[f32(&"x".repeat(MAX_NAME_LEN), &[1])]).is_ok());
}

// ---- malformed files ----

/// Builds headers the writer would refuse.
struct Raw {
    version: u32,
    kvs: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    data_len: usize,
}

impl Raw {
    fn new() -> Raw {
        Raw {
            version: 3,
            kvs: vec![],
            n_kv: 0,
            infos: vec![],
            n_tensors: 0,
            data_len: 0,
        }
    }

    fn kv(self, key: &str, value: &Value) -> Raw {
        let mut payload = vec![];
        value.encode(&mut payload);
        self.kv_bytes(key, &payload)
    }

    /// A KV whose type id and value are `payload` as given.
    fn kv_bytes(mut self, key: &str, payload: &[u8]) -> Raw {
        key.to_string().encode(&mut self.kvs);
        self.kvs.extend_from_slice(payload);
        self.n_kv += 1;
        self
    }

    fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Raw {
        name.to_string().encode(&mut self.infos);
        (dims.len() as u32).encode(&mut self.infos);
        dims.iter().for_each(|d| d.encode(&mut self.infos));
        ty.encode(&mut self.infos);
        offset.encode(&mut self.infos);
        self.n_tensors += 1;
        self
    }

    fn data(mut self, n: usize) -> Raw {
        self.data_len = n;
        self
    }

    /// Header, zero padding to 32, then `data_len` bytes.
    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        self.version.encode(&mut out);
        self.n_tensors.encode(&mut out);
        self.n_kv.encode(&mut out);
        out.extend_from_slice(&self.kvs);
        out.extend_from_slice(&self.infos);
        out.resize(out.len().next_multiple_of(32) + self.data_len, 0);
        out
    }
}

/// Type id and payload of a raw value.
fn payload(ty: u32, rest: &[u8]) -> Vec<u8> {
    let mut out = ty.to_le_bytes().to_vec();
    out.extend_from_slice(rest);
    out
}

#[test]
fn raw_builder_agrees_with_writer() {
    let raw = Raw::new()
        .kv("k", &Value::U16(5))
        .tensor("t", &[8, 2], 0, 0)
        .data(64)
        .bytes();
    let written = {
        let mut w = GgufWriter::new(
            Vec::new(),
            &[kv("k", Value::U16(5))],
            &[spec("t", &[8, 2], GgmlType::F32)],
        )
        .unwrap();
        w.write_tensor_data(&[0; 64]).unwrap();
        w.finish().unwrap()
    };
    assert_eq!(raw, written);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample_file();
    let h = parse(&bytes).unwrap();
    let last = h.tensors.last().unwrap();
    let data_end = (h.data_offset + last.offset + last.n_bytes()) as usize;
    for len in 0..data_end {
        assert!(
            parse(&bytes[..len]).is_err(),
            "prefix of {len} bytes parsed"
        );
    }
    // Only the final padding may be missing, as in llama.cpp.
    assert!(parse(&bytes[..data_end]).is_ok());
}

#[test]
fn truncated_data_names_the_tensor() {
    let bytes = Raw::new().tensor("w", &[4], 0, 0).data(15).bytes();
    assert_err_contains(
        &bytes,
        "truncated: tensor 'w' needs bytes up to 80 but file has 79",
    );
}

#[test]
fn bad_magic_and_versions() {
    let good = Raw::new().bytes();
    assert!(parse(&good).is_ok());
    let mut bad = good.clone();
    bad[0] = b'g';
    assert_err_contains(&bad, "bad magic");
    assert_err_contains(b"GG", "too short");
    let version = |v: u32| {
        Raw {
            version: v,
            ..Raw::new()
        }
        .bytes()
    };
    assert_eq!(parse(&version(2)).unwrap().version, 2);
    assert_err_contains(&version(1), "version 1 is not supported");
    assert_err_contains(&version(4), "unsupported GGUF version 4");
    assert_err_contains(&version(0), "unsupported GGUF version 0");
    assert_err_contains(&version(3u32.swap_bytes()), "big-endian");
}

#[test]
fn lying_counts_are_refused_before_allocating() {
    let mut huge_tensors = Raw::new().bytes();
    huge_tensors[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert_err_contains(&huge_tensors, "tensor count 1152921504606846976 cannot fit");
    let mut huge_kvs = Raw::new().bytes();
    huge_kvs[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_err_contains(&huge_kvs, "key/value count");

    let long_string = payload(8, &(1u64 << 40).to_le_bytes());
    assert_err_contains(
        &Raw::new().kv_bytes("s", &long_string).bytes(),
        "truncated: needs 1099511627776 bytes",
    );
    let mut long_array = payload(9, &8u32.to_le_bytes());
    long_array.extend_from_slice(&(1u64 << 62).to_le_bytes());
    assert_err_contains(
        &Raw::new().kv_bytes("a", &long_array).bytes(),
        "array element count",
    );
    let mut long_key = Raw::new().bytes();
    long_key.truncate(24);
    long_key[16..24].copy_from_slice(&1u64.to_le_bytes());
    long_key.extend_from_slice(&u64::MAX.to_le_bytes());
    long_key.extend_from_slice(&[0; 8]);
    assert_err_contains(&long_key, "truncated");
    let long_name = Raw::new().tensor("n", &[1], 0, 0).data(32).bytes();
    let mut lying = long_name.clone();
    lying[24..32].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    assert_err_contains(&lying, "tensor info #0");
}

#[test]
fn bad_alignment_values() {
    let with = |v: Value| Raw::new().kv(ALIGNMENT_KEY, &v).bytes();
    assert_err_contains(&with(Value::U32(0)), "not a power of two");
    assert_err_contains(&with(Value::U32(48)), "not a power of two");
    assert_err_contains(&with(Value::I32(32)), "has type INT32, expected UINT32");
    assert_err_contains(&with(Value::String("32".into())), "expected UINT32");
    let ok = Raw::new().kv(ALIGNMENT_KEY, &Value::U32(64)).bytes();
    // The builder pads to 32; the header is 57 bytes, so a 64 alignment needs 64 + data.
    let h = parse(&ok).unwrap();
    assert_eq!((h.alignment, h.data_offset), (64, 64));
}

#[test]
fn bad_values() {
    let bad = |payload: Vec<u8>, needle: &str| {
        assert_err_contains(&Raw::new().kv_bytes("k", &payload).bytes(), needle);
    };
    bad(payload(13, &[0]), "'k': unknown value type 13");
    bad(payload(7, &[2]), "bool byte 2");
    bad(
        payload(8, &[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]),
        "not valid UTF-8",
    );
    let mut nested = payload(9, &9u32.to_le_bytes());
    nested.extend_from_slice(&1u64.to_le_bytes());
    bad(nested, "nested arrays");
    let mut unknown_elem = payload(9, &99u32.to_le_bytes());
    unknown_elem.extend_from_slice(&0u64.to_le_bytes());
    bad(unknown_elem, "unknown array element type 99");
    let dup = Raw::new()
        .kv("k", &Value::U8(1))
        .kv("k", &Value::U8(1))
        .bytes();
    assert_err_contains(&dup, "duplicate key 'k'");
    let mut bad_key = Raw::new().kv("kk", &Value::U8(1)).bytes();
    bad_key[32] = 0xff;
    assert_err_contains(
        &bad_key,
        "key/value #0: string at offset 24 is not valid UTF-8",
    );
}

#[test]
fn bad_tensor_infos() {
    let one = |name: &str, dims: &[u64], ty: u32, offset: u64| {
        Raw::new().tensor(name, dims, ty, offset).data(4096).bytes()
    };
    assert!(parse(&one(&"n".repeat(63), &[4], 0, 0)).is_ok());
    assert_err_contains(
        &one(&"n".repeat(64), &[4], 0, 0),
        "is 64 bytes, longer than the 63",
    );
    assert_err_contains(&one("t", &[], 0, 0), "'t': 0 dims");
    assert_err_contains(&one("t", &[1; 5], 0, 0), "'t': 5 dims");
    assert_err_contains(&one("t", &[4], 4, 0), "unknown ggml type id 4");
    assert_err_contains(
        &one("t", &[33], 8, 0),
        "row length 33 is not a multiple of Q8_0's block size 32",
    );
    assert_err_contains(&one("t", &[1 << 32, 1 << 31], 0, 0), "too many elements");
    assert_err_contains(&one("t", &[u64::MAX], 1, 0), "too many elements");
    assert_err_contains(&one("t", &[4], 0, 32), "has offset 32, expected 0");
    let two = |second_offset: u64| {
        Raw::new()
            .tensor("a", &[4], 0, 0)
            .tensor("b", &[4], 0, second_offset)
            .data(64)
            .bytes()
    };
    assert!(parse(&two(32)).is_ok());
    assert_err_contains(&two(16), "'b' has offset 16, expected 32");
    let dup = Raw::new()
        .tensor("a", &[4], 0, 0)
        .tensor("a", &[4], 0, 32)
        .data(64)
        .bytes();
    assert_err_contains(&dup, "duplicate tensor name 'a'");
}

#[test]
fn open_reads_a_file_and_errors_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, sample_file()).unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.get("u32"), Some(&Value::U32(4_000_000_000)));
    assert_eq!(f.get("missing"), None);
    let t = f.tensor("c.q8_0").unwrap();
    assert_eq!(f.tensor_data(t), data_for(2, 136));
    assert!(f.tensor("nope").is_none());

    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x01\0\0\0").unwrap();
    let e = GgufFile::open(&bad).err().unwrap().to_string();
    assert!(e.contains("bad.gguf") && e.contains("version 1"), "{e}");
    let e = GgufFile::open(&dir.path().join("none.gguf"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("none.gguf"), "{e}");
}

/// Random byte flips in the header: parse may accept or refuse, but must return.
#[test]
fn mutated_headers_never_panic() {
    let bytes = sample_file();
    let header_len = parse(&bytes).unwrap().data_offset as usize;
    // xorshift64: deterministic, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut mutated = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % header_len as u64) as usize;
            mutated[at] = next() as u8;
        }
        let _ = parse(&mutated);
    }
}
