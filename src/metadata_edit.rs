//! `llq meta`: a GGUF's key/values changed without reconverting. The new file (or split set,
//! split as the input is) gets the edited metadata and the tensors' bytes copied as they are,
//! streamed, behind atomic output files. The architecture, the layout keys and the tensor
//! table cannot change: those would make a different model, not a fixed one.

use crate::atomic_file::{self, AtomicFile};
use crate::error::{Error, Result};
use crate::quantize::metadata::set_chat_template;
use llq_formats::gguf::split::SplitLimit;
use llq_formats::gguf::{GgufFile, GgufWriter, TensorSpec, Value, ValueType};
use llq_types::keys;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// One change to the metadata.
#[derive(Clone, Debug)]
pub enum Edit {
    /// `KEY=VALUE`: an existing key keeps its type; a new one needs `TYPE:VALUE` (`u32:4096`,
    /// `f32:1e-5`, `bool:true`, `str:text`, any GGUF scalar type name in lower case).
    Set {
        key: String,
        value: String,
    },
    /// A string value, for a new key or an existing string key.
    SetStr {
        key: String,
        value: String,
    },
    Delete(String),
    /// The default chat template's text.
    ChatTemplate(String),
}

/// Keys that describe the file rather than the model, or what the tensors mean.
fn protected(key: &str) -> bool {
    key == keys::general::ARCHITECTURE
        || key == keys::general::ALIGNMENT
        || key.starts_with(keys::split::PREFIX)
}

/// `kvs` with `edits` applied in order; the error names the key.
pub fn apply(
    kvs: &[(String, Value)],
    edits: &[Edit],
) -> std::result::Result<Vec<(String, Value)>, String> {
    let mut out = kvs.to_vec();
    for edit in edits {
        let key = match edit {
            Edit::Set { key, .. } | Edit::SetStr { key, .. } | Edit::Delete(key) => key.as_str(),
            Edit::ChatTemplate(_) => keys::tokenizer::CHAT_TEMPLATE,
        };
        if protected(key) {
            return Err(format!(
                "{key} cannot be changed: it defines the file, not the metadata"
            ));
        }
        let existing = out.iter().position(|(k, _)| k == key);
        let value = match edit {
            Edit::Delete(_) => {
                let at = existing.ok_or_else(|| format!("--delete {key}: no such key"))?;
                out.remove(at);
                continue;
            }
            Edit::ChatTemplate(text) => {
                set_chat_template(&mut out, text);
                continue;
            }
            Edit::SetStr { value, .. } => {
                if let Some(at) = existing.filter(|&i| !matches!(out[i].1, Value::String(_))) {
                    return Err(format!(
                        "--set-str {key}: the key is {}, not a string",
                        out[at].1.value_type().name()
                    ));
                }
                Value::String(value.clone())
            }
            Edit::Set { value, .. } => match existing {
                Some(at) => {
                    let ty = out[at].1.value_type();
                    Value::parse_scalar(ty, value).map_err(|e| format!("--set {key}: {e}"))?
                }
                None => typed(key, value)?,
            },
        };
        match existing {
            Some(at) => out[at].1 = value,
            None => out.push((key.to_string(), value)),
        }
    }
    Ok(out)
}

/// `TYPE:VALUE` for a new key.
fn typed(key: &str, text: &str) -> std::result::Result<Value, String> {
    let usage = || {
        format!(
            "--set {key}: a new key needs its type, TYPE:VALUE (u8 i8 u16 i16 u32 i32 u64 i64 \
             f32 f64 bool str), e.g. {key}=u32:{text}"
        )
    };
    let (ty, value) = text.split_once(':').ok_or_else(usage)?;
    let ty = match ty {
        "str" => ValueType::String,
        "bool" => ValueType::Bool,
        "u8" => ValueType::U8,
        "i8" => ValueType::I8,
        "u16" => ValueType::U16,
        "i16" => ValueType::I16,
        "u32" => ValueType::U32,
        "i32" => ValueType::I32,
        "u64" => ValueType::U64,
        "i64" => ValueType::I64,
        "f32" => ValueType::F32,
        "f64" => ValueType::F64,
        _ => return Err(usage()),
    };
    Value::parse_scalar(ty, value).map_err(|e| format!("--set {key}: {e}"))
}

/// Write `input` with `edits` to `out` (a split set like the input's, named after `out`);
/// the files written.
pub fn rewrite(input: &Path, out: &Path, edits: &[Edit], overwrite: bool) -> Result<Vec<PathBuf>> {
    let file = GgufFile::open(input)?;
    let model_kv: Vec<(String, Value)> = file
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with(keys::split::PREFIX))
        .cloned()
        .collect();
    let kv = apply(&model_kv, edits).map_err(Error::Usage)?;
    let specs: Vec<TensorSpec> = file
        .tensors
        .iter()
        .map(|t| TensorSpec {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ty: t.ty,
        })
        .collect();
    let counts: Vec<usize> = (0..file.shards().len())
        .map(|s| file.tensors.iter().filter(|t| t.shard == s).count())
        .collect();
    let sizes: Vec<u64> = file.tensors.iter().map(|t| t.n_bytes()).collect();
    let limit = (counts.len() > 1).then_some(SplitLimit::Counts(counts));
    let parts = crate::quantize::output::parts(out, &kv, &specs, &sizes, limit)
        .expect("as many files as the input");
    let files = parts
        .iter()
        .map(|p| AtomicFile::create(&p.path, overwrite))
        .collect::<Result<Vec<_>>>()?;
    let mut tensors = file.tensors.iter();
    for (part, f) in parts.iter().zip(&files) {
        let err = |e: std::io::Error| Error::io(&part.path, "cannot write", e);
        let buffered = BufWriter::with_capacity(1 << 22, f.file());
        let mut writer = GgufWriter::new(buffered, &part.kv, &part.specs).map_err(err)?;
        for t in tensors.by_ref().take(part.specs.len()) {
            writer.write_tensor_data(file.tensor_data(t)).map_err(err)?;
        }
        writer.finish().and_then(|mut w| w.flush()).map_err(err)?;
    }
    atomic_file::commit_all(files)?;
    Ok(parts.into_iter().map(|p| p.path).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kvs() -> Vec<(String, Value)> {
        vec![
            ("general.architecture".into(), Value::String("llama".into())),
            ("general.name".into(), Value::String("m".into())),
            ("llama.context_length".into(), Value::U32(512)),
        ]
    }

    fn set(key: &str, value: &str) -> Edit {
        Edit::Set {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn edits_keep_types_and_order() {
        let out = apply(
            &kvs(),
            &[
                set("llama.context_length", "4096"),
                set("x.flag", "bool:true"),
                Edit::Delete("general.name".into()),
                Edit::ChatTemplate("T".into()),
            ],
        )
        .unwrap();
        assert_eq!(out[1], ("llama.context_length".into(), Value::U32(4096)));
        assert_eq!(out[2], ("x.flag".into(), Value::Bool(true)));
        assert_eq!(out[3].1, Value::String("T".into()));
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn bad_edits_name_the_key() {
        for (edit, needle) in [
            (set("general.architecture", "gpt2"), "cannot be changed"),
            (set("split.count", "3"), "cannot be changed"),
            (set("llama.context_length", "big"), "is not a UINT32"),
            (set("new.key", "7"), "needs its type"),
            (Edit::Delete("nope".into()), "no such key"),
            (
                Edit::SetStr {
                    key: "llama.context_length".into(),
                    value: "x".into(),
                },
                "not a string",
            ),
        ] {
            let e = apply(&kvs(), &[edit]).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }
}
