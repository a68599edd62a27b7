//! The conversion loop: source rows → f32 → target type → GGUF writer, one tensor at a time,
//! row chunks in parallel, into an atomic output file.

use crate::error::{Error, Result};
use crate::metadata;
use crate::output::AtomicFile;
use crate::plan::{self, PlanOptions, TensorPlan};
use crate::progress;
use crate::source::{OpenOptions, Source, SourceKind, SourceTensor};
use llq_formats::gguf::{GgufWriter, TensorSpec, Value};
use llq_formats::imatrix::Imatrix;
use llq_kernels::QuantMode;
use llq_types::keys;
use rayon::prelude::*;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to convert.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub plan: PlanOptions,
    /// Replace an existing output file.
    pub overwrite: bool,
    /// Keep NaN/Inf weights instead of refusing them.
    pub allow_nonfinite: bool,
    /// Accept a quantized GGUF as input (its tensors are dequantized first).
    pub allow_requantize: bool,
    pub progress: bool,
    /// llama.cpp importance matrix (legacy `.dat` or GGUF) weighting the quantizers' rounding;
    /// also turns on `plan.has_imatrix`. See [`match_imatrix`] for how names and sizes are checked.
    pub imatrix: Option<PathBuf>,
    /// How the imatrix steers the rounding (ggml's, or [`QuantMode::Unbiased`]).
    pub quant_mode: QuantMode,
    /// How the source checkpoint is read (`--rope-scaling-factor`).
    pub source: OpenOptions,
}

/// What a conversion did.
#[derive(Clone, Debug)]
pub struct ConvertReport {
    pub tensors: Vec<TensorPlan>,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub seconds: f64,
}

/// Elements decoded per parallel task: large enough to amortize scheduling, small enough that
/// a few tasks per thread keep memory bounded (4 MiB of f32).
const TASK_ELEMENTS: usize = 1 << 20;

pub fn convert(src: &Path, out: &Path, opts: &ConvertOptions) -> Result<ConvertReport> {
    let started = Instant::now();
    let source = Source::open_with(src, &opts.source)?;
    check_requantize(&source, opts)?;
    let list: Vec<_> = source
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let mut plan_opts = opts.plan.clone();
    plan_opts.has_imatrix |= opts.imatrix.is_some();
    let plans = plan::plan(&source.hparams, &list, &plan_opts)?;
    let mut kv = metadata::build(&source, opts.plan.file_type);
    // Read and check the imatrix before the output file exists, so a bad one leaves no OUT.
    let importance = match &opts.imatrix {
        None => vec![None; plans.len()],
        Some(path) => {
            let imatrix = Imatrix::open(path)?;
            let importance = match_imatrix(path, &imatrix, &plans)?;
            add_imatrix_metadata(&mut kv, path, &imatrix);
            importance
        }
    };
    let specs: Vec<TensorSpec> = plans
        .iter()
        .map(|p| TensorSpec {
            name: p.name.clone(),
            dims: p.ggml_dims(),
            ty: p.ty,
        })
        .collect();

    let file = AtomicFile::create(out, opts.overwrite)?;
    let write_err = |e: std::io::Error| Error::io(out, "cannot write", e);
    let buffered = BufWriter::with_capacity(1 << 22, file.file());
    let mut writer = GgufWriter::new(buffered, &kv, &specs).map_err(write_err)?;
    let bar = opts
        .progress
        .then(|| progress::bytes_bar(source.source_bytes()));
    for (i, ((tensor, plan), importance)) in source
        .tensors
        .iter()
        .zip(&plans)
        .zip(&importance)
        .enumerate()
    {
        if let Some(bar) = &bar {
            bar.set_message(format!("tensor {}/{} {}", i + 1, plans.len(), plan.name));
        }
        let importance = importance.as_deref();
        convert_tensor(tensor, plan, importance, opts, &mut writer, |bytes| {
            if let Some(bar) = &bar {
                bar.inc(bytes)
            }
        })
        .map_err(|e| match e {
            TensorError::Io(e) => write_err(e),
            TensorError::Data(msg) => Error::file(src, msg),
        })?;
    }
    writer
        .finish()
        .and_then(|mut w| w.flush())
        .map_err(write_err)?;
    file.commit()?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(ConvertReport {
        output_bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        input_bytes: source.source_bytes(),
        tensors: plans,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// An already-quantized GGUF loses quality twice; refuse it unless asked.
fn check_requantize(source: &Source, opts: &ConvertOptions) -> Result<()> {
    if source.kind != SourceKind::Gguf || opts.allow_requantize {
        return Ok(());
    }
    match source
        .tensors
        .iter()
        .find(|t| t.stored_type().is_quantized())
    {
        Some(t) => Err(Error::file(
            &source.path,
            format!(
                "is already quantized (tensor {} is {}); requantizing loses quality twice, \
                 pass --allow-requantize to do it anyway",
                t.name,
                t.stored_type()
            ),
        )),
        None => Ok(()),
    }
}

/// The imatrix entry of each planned tensor, as llama-quantize picks them: an entry whose name is
/// a tensor's GGUF name must hold one weight per column (else an error naming the tensor and
/// both sizes; for `token_embd.weight` only a warning, and the entry is not used). Quantized
/// tensors without an entry are quantized without importance and listed in one warning; entries
/// for tensors the model lacks are ignored with a warning. An imatrix none of whose entries
/// names a tensor of the model is an error: it was made for another model.
pub fn match_imatrix(
    path: &Path,
    imatrix: &Imatrix,
    plans: &[TensorPlan],
) -> Result<Vec<Option<Vec<f32>>>> {
    const TOKEN_EMBD: &str = "token_embd.weight";
    let mut missing = Vec::new();
    let mut out = Vec::with_capacity(plans.len());
    for p in plans {
        let row_len = *p.shape.last().unwrap_or(&1);
        let entry = match imatrix.entries.get(&p.name) {
            Some(v) if v.len() == row_len => Some(v.clone()),
            Some(v) if p.name == TOKEN_EMBD => {
                warn(format!(
                    "{}: entry {TOKEN_EMBD} has {} values but the tensor has {row_len} columns; \
                     not using it",
                    path.display(),
                    v.len()
                ));
                None
            }
            Some(v) => {
                return Err(Error::file(
                    path,
                    format!(
                        "tensor {}: imatrix entry has {} values, expected {row_len} (one per \
                         column); was it made for another model?",
                        p.name,
                        v.len()
                    ),
                ))
            }
            None => {
                if p.ty.is_quantized() && p.name != TOKEN_EMBD {
                    missing.push(p.name.as_str());
                }
                None
            }
        };
        // Only quantized types weight their rounding; F32/F16/BF16 copies ignore it.
        out.push(entry.filter(|_| p.ty.is_quantized()));
    }
    let matched = plans
        .iter()
        .filter(|p| imatrix.entries.contains_key(&p.name))
        .count();
    if matched == 0 {
        let example = imatrix.entries.keys().next().map_or("", |k| k.as_str());
        return Err(Error::file(
            path,
            format!(
                "none of its {} entries names a tensor of this model (first: {example:?}); \
                 was it made for another model?",
                imatrix.entries.len()
            ),
        ));
    }
    if !missing.is_empty() {
        warn(format!(
            "{}: no entry for {} quantized tensor(s), quantized without importance: {}",
            path.display(),
            missing.len(),
            missing.join(", ")
        ));
    }
    let unused = imatrix.entries.len() - matched;
    if unused > 0 {
        let names: Vec<_> = imatrix
            .entries
            .keys()
            .filter(|k| !plans.iter().any(|p| &p.name == *k))
            .map(String::as_str)
            .collect();
        warn(format!(
            "{}: ignoring {unused} entries for tensors not in the model: {}",
            path.display(),
            names.join(", ")
        ));
    }
    Ok(out)
}

fn warn(msg: String) {
    eprintln!("warning: {msg}");
}

/// The `quantize.imatrix.*` keys llama-quantize records (replacing any the input carried).
fn add_imatrix_metadata(kv: &mut Vec<(String, Value)>, path: &Path, imatrix: &Imatrix) {
    kv.retain(|(k, _)| !k.starts_with(keys::imatrix::PREFIX));
    // llama.cpp keeps at most 127 bytes of these strings.
    let clip = |s: &str| {
        let mut end = s.len().min(127);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Value::String(s[..end].to_string())
    };
    kv.push((keys::imatrix::FILE.into(), clip(&path.to_string_lossy())));
    if let Some(d) = imatrix.datasets.first() {
        kv.push((keys::imatrix::DATASET.into(), clip(d)));
    }
    kv.push((
        keys::imatrix::ENTRIES_COUNT.into(),
        Value::U32(imatrix.entries.len() as u32),
    ));
    if let Some(n) = imatrix.chunks.filter(|&n| n > 0) {
        kv.push((keys::imatrix::CHUNKS_COUNT.into(), Value::U32(n)));
    }
}

enum TensorError {
    Io(std::io::Error),
    Data(String),
}

/// Convert one tensor in row chunks: each chunk is decoded and encoded in parallel tasks, then
/// written in order, so the output does not depend on the thread count.
fn convert_tensor<W: Write + Send>(
    tensor: &SourceTensor,
    plan: &TensorPlan,
    importance: Option<&[f32]>,
    opts: &ConvertOptions,
    writer: &mut GgufWriter<W>,
    mut on_progress: impl FnMut(u64),
) -> std::result::Result<(), TensorError> {
    let reader = &tensor.reader;
    let (rows, cols) = (reader.rows(), reader.cols());
    let tasks_per_chunk = rayon::current_num_threads() * 4;
    // Small tensors are still split across every thread.
    let rows_per_task = (TASK_ELEMENTS / cols)
        .min(rows.div_ceil(tasks_per_chunk))
        .max(1);
    let encoder = ChunkEncoder {
        tensor,
        plan,
        importance,
        allow_nonfinite: opts.allow_nonfinite,
        quant_mode: opts.quant_mode,
        rows_per_task,
    };
    let rows_per_chunk = rows_per_task * tasks_per_chunk;
    let chunks: Vec<(usize, usize)> = (0..rows)
        .step_by(rows_per_chunk)
        .map(|first| (first, rows_per_chunk.min(rows - first)))
        .collect();
    let in_bytes_per_row = reader.source_bytes() / rows as u64;
    let capacity = rows_per_chunk.min(rows) * encoder.out_row_bytes();
    let (mut current, mut next) = (vec![0u8; capacity], vec![0u8; capacity]);
    encoder.encode(chunks[0], &mut current)?;
    for (i, &(first, n)) in chunks.iter().enumerate() {
        // Write chunk i while chunk i + 1 is encoded: the disk and the cores work at once.
        let bytes = &current[..n * encoder.out_row_bytes()];
        let (written, encoded) = rayon::join(
            || writer.write_tensor_data(bytes).map_err(TensorError::Io),
            || match chunks.get(i + 1) {
                Some(&following) => encoder.encode(following, &mut next),
                None => Ok(()),
            },
        );
        written?;
        encoded?;
        reader.release_rows(first, n);
        on_progress(in_bytes_per_row * n as u64);
        std::mem::swap(&mut current, &mut next);
    }
    reader.release_rows(0, rows);
    Ok(())
}

/// Encodes row chunks of one tensor into its target type, in parallel tasks of
/// `rows_per_task` rows; each worker reuses one f32 buffer.
struct ChunkEncoder<'a> {
    tensor: &'a SourceTensor,
    plan: &'a TensorPlan,
    importance: Option<&'a [f32]>,
    allow_nonfinite: bool,
    quant_mode: QuantMode,
    rows_per_task: usize,
}

impl ChunkEncoder<'_> {
    fn row_len(&self) -> usize {
        *self.plan.shape.last().unwrap_or(&1)
    }

    /// Output bytes of one source row (a row of the reader may hold several GGUF rows).
    fn out_row_bytes(&self) -> usize {
        let row_len = self.row_len();
        self.plan
            .ty
            .row_bytes(row_len)
            .expect("plan checked block fit")
            * (self.tensor.reader.cols() / row_len)
    }

    /// Encode rows `first..first + n` into the start of `out`.
    fn encode(
        &self,
        (first, n): (usize, usize),
        out: &mut [u8],
    ) -> std::result::Result<(), TensorError> {
        let (cols, row_len) = (self.tensor.reader.cols(), self.row_len());
        let out_row_bytes = self.out_row_bytes();
        let gguf_row_bytes = self.plan.ty.row_bytes(row_len).expect("checked");
        out[..n * out_row_bytes]
            .par_chunks_mut(self.rows_per_task * out_row_bytes)
            .enumerate()
            .try_for_each_init(Vec::new, |buf, (task, dst)| {
                let first_row = first + task * self.rows_per_task;
                buf.resize(dst.len() / out_row_bytes * cols, 0f32);
                self.tensor.reader.read_rows(first_row, buf);
                if !self.allow_nonfinite {
                    check_finite(&self.tensor.name, first_row, cols, buf)?;
                }
                for (src, dst) in buf
                    .chunks_exact(row_len)
                    .zip(dst.chunks_exact_mut(gguf_row_bytes))
                {
                    llq_kernels::quantize_row_mode(
                        self.plan.ty,
                        src,
                        dst,
                        self.importance,
                        self.quant_mode,
                    );
                }
                Ok(())
            })
            .map_err(TensorError::Data)
    }
}

/// Refuse NaN and infinite weights, naming the tensor and the row.
fn check_finite(
    name: &str,
    first_row: usize,
    cols: usize,
    rows: &[f32],
) -> std::result::Result<(), String> {
    match rows.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(format!(
            "tensor {name}: row {} holds a non-finite value ({}); pass --allow-nonfinite to keep it",
            first_row + i / cols,
            rows[i]
        )),
    }
}
