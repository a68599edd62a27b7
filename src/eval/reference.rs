//! The reference side of a comparison: an F32/F16/BF16 GGUF as it is, or a checkpoint folder
//! converted to a temporary F32 GGUF, and the checks that a reference and a quantized model
//! belong together.

use crate::error::{Error, Result};
use crate::quantize::{self, ConvertOptions, Policy};
use crate::runtime::model::Model;
use llq_types::{keys, FileType};
use std::path::{Path, PathBuf};

/// A temporary file path, removed on drop.
pub(crate) struct TempPath(PathBuf);

impl TempPath {
    pub(crate) fn new(tag: &str) -> TempPath {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempPath(std::env::temp_dir().join(format!("llq-{tag}-{}-{n}.gguf", std::process::id())))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `llq convert src -o out -t ft` with default options, quietly; the output's size.
pub(crate) fn convert_to(src: &Path, out: &Path, ft: FileType) -> Result<u64> {
    let opts = ConvertOptions {
        overwrite: true,
        progress: false,
        ..ConvertOptions::new(Policy::new(ft))
    };
    Ok(quantize::convert(src, out, &opts)?.output_bytes)
}

/// The reference model: a GGUF as is, or a checkpoint folder converted to an F32 GGUF in the
/// temp folder, mapped, and unlinked (the mapping keeps the data until the model is dropped).
pub fn load_reference(path: &Path) -> Result<Model> {
    if llq_formats::gguf::is_gguf(path) {
        return Model::load(path);
    }
    let tmp = TempPath::new("ref-f32");
    convert_to(path, tmp.path(), FileType::F32)?;
    Model::load(tmp.path())
}

/// Whether every weight matrix of `m` is unquantized (F32/F16/BF16).
pub fn is_unquantized(m: &Model) -> bool {
    m.layers.iter().all(|l| !l.wq.ty.is_quantized()) && !m.output.ty.is_quantized()
}

/// REF and QUANT must be the same kind of model with the same vocabulary.
pub fn check_pair(r: &Model, q: &Model, ref_path: &Path, q_path: &Path) -> Result<()> {
    let arch = |m: &Model| {
        m.file
            .get(keys::general::ARCHITECTURE)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string()
    };
    if arch(r) != arch(q) {
        return Err(Error::Usage(format!(
            "{} is a {} model but {} is a {} model",
            ref_path.display(),
            arch(r),
            q_path.display(),
            arch(q)
        )));
    }
    fn tokens(m: &Model) -> Option<&llq_formats::gguf::Value> {
        m.file.get(keys::tokenizer::TOKENS)
    }
    if r.hp.n_vocab != q.hp.n_vocab || tokens(r) != tokens(q) {
        return Err(Error::Usage(format!(
            "{} and {} have different vocabularies ({} and {} tokens{})",
            ref_path.display(),
            q_path.display(),
            r.hp.n_vocab,
            q.hp.n_vocab,
            if r.hp.n_vocab == q.hp.n_vocab {
                ", different token texts"
            } else {
                ""
            }
        )));
    }
    Ok(())
}
