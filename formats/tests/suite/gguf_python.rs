//! llq's GGUF reader and writer against the reference implementation, gguf-py.
//!
//! Needs `LLQ_PYTHON`: a python with the `gguf` package and numpy. The llama.cpp-written file is
//! found through `LLQ_SHARED` (the shared folder). A test whose reference is missing follows
//! `llq_testsupport::missing`.

use llq_formats::gguf::{layout, Array, GgufFile, GgufWriter, TensorSpec, Value, ALIGNMENT_KEY};
use llq_testsupport::{python, shared};
use llq_types::GgmlType;
use serde_json::{json, Value as Json};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn tiny_llama() -> Option<PathBuf> {
    Some(shared()?.join("gguf/llama-2-tiny-random.gguf"))
}

/// Run `tests/py/<script>` on files; its stdout.
fn run_py(python: &Path, script: &str, args: &[&Path]) -> String {
    let args: Vec<&str> = args
        .iter()
        .map(|p| p.to_str().expect("utf-8 path"))
        .collect();
    llq_testsupport::run_py(python, script, &args)
}

fn gguf_py_dump(python: &Path, file: &Path) -> Json {
    serde_json::from_str(&run_py(python, "gguf_dump.py", &[file])).expect("dump is not JSON")
}

/// sha256 hex digests of byte strings, computed by python (Rust's std has no hasher).
fn sha256_all(python: &Path, chunks: &[&[u8]]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = chunks
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let path = dir.path().join(i.to_string());
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    run_py(python, "gguf_sha256.py", &refs)
        .lines()
        .map(str::to_string)
        .collect()
}

/// One KV in the dump's form.
fn kv_json(key: &str, value: &Value) -> Json {
    let mut entry =
        json!({"key": key, "type": value.value_type().name(), "value": value.to_json()});
    if let Some(array) = value.as_array() {
        entry["elem_type"] = json!(array.elem_type().name());
    }
    entry
}

struct TensorDump<'a> {
    name: &'a str,
    dims: &'a [u64],
    ty: GgmlType,
    offset: u64,
    data: &'a [u8],
}

/// The dump gguf_dump.py prints, built from llq's view of a file.
fn llq_dump(
    python: &Path,
    metadata: &[(String, Value)],
    tensors: &[TensorDump<'_>],
    header: Json,
) -> Json {
    let data: Vec<&[u8]> = tensors.iter().map(|t| t.data).collect();
    let hashes = sha256_all(python, &data);
    let tensors: Vec<Json> = tensors
        .iter()
        .zip(hashes)
        .map(|(t, sha256)| {
            json!({"name": t.name, "shape": t.dims, "type": t.ty.id(), "offset": t.offset,
                   "n_bytes": t.data.len(), "sha256": sha256})
        })
        .collect();
    let mut dump = header;
    dump["kv"] = metadata.iter().map(|(k, v)| kv_json(k, v)).collect();
    dump["tensors"] = tensors.into();
    dump
}

/// JSON equality, except that floats may differ in the last bit: serde_json's default float
/// parsing is not always correctly rounded.
fn same_json(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || x.to_bits().abs_diff(y.to_bits()) <= 1
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Compare entry by entry so that a failure names the key or tensor.
fn assert_same_dump(ours: &Json, theirs: &Json) {
    for field in ["version", "alignment", "data_offset"] {
        assert_eq!(ours[field], theirs[field], "{field}");
    }
    for list in ["kv", "tensors"] {
        let (a, b) = (
            ours[list].as_array().unwrap(),
            theirs[list].as_array().unwrap(),
        );
        let names = |v: &[Json]| -> Vec<Json> {
            v.iter()
                .map(|e| e.get("key").or(e.get("name")).cloned().unwrap_or_default())
                .collect()
        };
        assert_eq!(names(a), names(b), "{list} names differ");
        for (x, y) in a.iter().zip(b) {
            assert!(
                same_json(x, y),
                "{list} entry differs:\n llq:     {x}\n gguf-py: {y}"
            );
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn test_metadata() -> Vec<(String, Value)> {
    let kv = |k: &str, v: Value| (k.to_string(), v);
    vec![
        kv("general.architecture", Value::String("llama".into())),
        kv(ALIGNMENT_KEY, Value::U32(64)),
        kv("t.u8", Value::U8(250)),
        kv("t.i8", Value::I8(-120)),
        kv("t.u16", Value::U16(65000)),
        kv("t.i16", Value::I16(-32000)),
        kv("t.u32", Value::U32(4_000_000_000)),
        kv("t.i32", Value::I32(-2_000_000_000)),
        kv("t.f32", Value::F32(1e-5)),
        kv("t.bool", Value::Bool(true)),
        kv("t.string", Value::String("ünïcödé ▁tokens".into())),
        kv("t.u64", Value::U64(u64::MAX)),
        kv("t.i64", Value::I64(i64::MIN)),
        kv("t.f64", Value::F64(0.1)),
        kv(
            "a.string",
            Value::Array(Array::String(strings(&["<unk>", "<s>", "▁a b", ""]))),
        ),
        kv(
            "a.f32",
            Value::Array(Array::F32(vec![0.0, -1.5, std::f32::consts::PI, f32::MAX])),
        ),
        kv("a.i32", Value::Array(Array::I32(vec![1, 2, 3, 6, -7]))),
        kv("a.u8", Value::Array(Array::U8(vec![0, 255]))),
        kv("a.bool", Value::Array(Array::Bool(vec![false, true]))),
        kv("a.u64", Value::Array(Array::U64(vec![1 << 40]))),
        kv("a.f64", Value::Array(Array::F64(vec![-2.5e-300]))),
        kv("a.empty", Value::Array(Array::I32(vec![]))),
    ]
}

fn test_tensors() -> Vec<TensorSpec> {
    let spec = |name: &str, dims: &[u64], ty| TensorSpec {
        name: name.to_string(),
        dims: dims.to_vec(),
        ty,
    };
    vec![
        spec("a.f32", &[4, 3], GgmlType::F32),
        spec("b.f16", &[8, 2], GgmlType::F16),
        spec("c.q8_0", &[64, 2], GgmlType::Q8_0),
        spec("d.f32_3d", &[2, 3, 5], GgmlType::F32),
    ]
}

#[test]
fn gguf_py_reads_what_llq_writes() {
    let Some(python) = python() else { return };
    let (metadata, specs) = (test_metadata(), test_tensors());
    let plan = layout(&metadata, &specs).unwrap();
    let data: Vec<Vec<u8>> = plan
        .offsets
        .iter()
        .zip(&specs)
        .map(|(offset, t)| {
            let n = t.ty.row_bytes(t.dims[0] as usize).unwrap() as u64
                * t.dims[1..].iter().product::<u64>();
            (0..n).map(|i| (i * 7 + offset) as u8).collect()
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("written.gguf");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = GgufWriter::new(BufWriter::new(file), &metadata, &specs).unwrap();
    // Odd chunks that straddle tensor boundaries.
    for chunk in data.concat().chunks(37) {
        w.write_tensor_data(chunk).unwrap();
    }
    w.finish().unwrap().flush().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), plan.file_size);

    let tensors: Vec<TensorDump<'_>> = specs
        .iter()
        .zip(&plan.offsets)
        .zip(&data)
        .map(|((t, &offset), data)| TensorDump {
            name: &t.name,
            dims: &t.dims,
            ty: t.ty,
            offset,
            data,
        })
        .collect();
    let header = json!({"version": 3, "alignment": 64, "data_offset": plan.data_offset});
    let expected = llq_dump(&python, &metadata, &tensors, header);
    assert_same_dump(&expected, &gguf_py_dump(&python, &path));
}

/// llq's reader's view of a file, in the dump's form.
fn read_with_llq(python: &Path, file: &GgufFile) -> Json {
    let tensors: Vec<TensorDump<'_>> = file
        .tensors
        .iter()
        .map(|t| TensorDump {
            name: &t.name,
            dims: &t.dims,
            ty: t.ty,
            offset: t.offset,
            data: file.tensor_data(t),
        })
        .collect();
    let header = json!({"version": file.version, "alignment": file.alignment,
                        "data_offset": file.shards()[0].data_offset});
    llq_dump(python, &file.metadata, &tensors, header)
}

#[test]
fn llq_reads_a_llama_cpp_file_as_gguf_py_does() {
    let (Some(python), Some(path)) = (python(), tiny_llama()) else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    assert!(file.tensors.len() > 1);
    assert_same_dump(
        &read_with_llq(&python, &file),
        &gguf_py_dump(&python, &path),
    );
}

#[test]
fn rewriting_a_llama_cpp_gguf_is_byte_identical() {
    let Some(path) = tiny_llama() else { return };
    let file = GgufFile::open(&path).unwrap();
    let specs: Vec<TensorSpec> = file
        .tensors
        .iter()
        .map(|t| TensorSpec {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ty: t.ty,
        })
        .collect();
    let mut w = GgufWriter::new(Vec::new(), &file.metadata, &specs).unwrap();
    for t in &file.tensors {
        w.write_tensor_data(file.tensor_data(t)).unwrap();
    }
    let written = w.finish().unwrap();
    assert!(
        written == file.shards()[0].map[..],
        "rewritten file differs from the original"
    );
}
