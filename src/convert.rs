//! The conversion loop: source rows → f32 → target type → GGUF writer, one tensor at a time,
//! row chunks in parallel, into an atomic output file.

use crate::error::{Error, Result};
use crate::metadata;
use crate::output::AtomicFile;
use crate::plan::{self, PlanOptions, TensorPlan};
use crate::progress;
use crate::source::{Source, SourceKind, SourceTensor};
use llq_formats::gguf::{GgufWriter, TensorSpec};
use rayon::prelude::*;
use std::io::{BufWriter, Write};
use std::path::Path;
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
    let source = Source::open(src)?;
    check_requantize(&source, opts)?;
    let list: Vec<_> = source
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let plans = plan::plan(&source.hparams, &list, &opts.plan)?;
    let kv = metadata::build(&source, opts.plan.file_type);
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
    for (i, (tensor, plan)) in source.tensors.iter().zip(&plans).enumerate() {
        if let Some(bar) = &bar {
            bar.set_message(format!("tensor {}/{} {}", i + 1, plans.len(), plan.name));
        }
        convert_tensor(tensor, plan, opts, &mut writer, |bytes| {
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

enum TensorError {
    Io(std::io::Error),
    Data(String),
}

/// Convert one tensor in row chunks: each chunk is decoded and encoded in parallel tasks, then
/// written in order, so the output does not depend on the thread count.
fn convert_tensor<W: Write>(
    tensor: &SourceTensor,
    plan: &TensorPlan,
    opts: &ConvertOptions,
    writer: &mut GgufWriter<W>,
    mut on_progress: impl FnMut(u64),
) -> std::result::Result<(), TensorError> {
    let reader = &tensor.reader;
    let (rows, cols) = (reader.rows(), reader.cols());
    let row_len = *plan.shape.last().unwrap_or(&1);
    let out_row_bytes =
        plan.ty.row_bytes(row_len).expect("plan checked block fit") * (cols / row_len);
    let rows_per_task = (TASK_ELEMENTS / cols).max(1);
    let tasks_per_chunk = rayon::current_num_threads() * 4;
    let rows_per_chunk = rows_per_task * tasks_per_chunk;
    let in_bytes_per_row = reader.source_bytes() / rows as u64;
    let mut out = vec![0u8; rows_per_chunk.min(rows) * out_row_bytes];
    for first in (0..rows).step_by(rows_per_chunk) {
        let n = rows_per_chunk.min(rows - first);
        let out = &mut out[..n * out_row_bytes];
        out.par_chunks_mut(rows_per_task * out_row_bytes)
            .enumerate()
            .try_for_each(|(task, dst)| {
                let first_row = first + task * rows_per_task;
                let mut buf = vec![0f32; dst.len() / out_row_bytes * cols];
                reader.read_rows(first_row, &mut buf);
                if !opts.allow_nonfinite {
                    check_finite(&tensor.name, first_row, cols, &buf)?;
                }
                let out_bytes = plan.ty.row_bytes(row_len).expect("checked");
                for (src, dst) in buf
                    .chunks_exact(row_len)
                    .zip(dst.chunks_exact_mut(out_bytes))
                {
                    llq_kernels::quantize_row(plan.ty, src, dst, None);
                }
                Ok(())
            })
            .map_err(TensorError::Data)?;
        writer.write_tensor_data(out).map_err(TensorError::Io)?;
        on_progress(in_bytes_per_row * n as u64);
    }
    Ok(())
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
