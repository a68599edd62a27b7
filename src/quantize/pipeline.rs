//! The conversion loop: source rows → f32 → target type → GGUF writer, one tensor at a time,
//! row chunks in parallel, into an atomic output file.

use super::fit::{self, FitOptions, FitReport};
use super::gptq::{self, GptqOptions, GptqReport};
use super::policy::{self, Policy, TensorTarget};
use super::{imatrix, metadata, output};
use crate::atomic_file::{self, AtomicFile};
use crate::checkpoint::{OpenOptions, Source, SourceKind, SourceTensor};
use crate::error::{Error, Result};
use crate::progress;
use llq_formats::gguf::split::SplitLimit;
use llq_formats::gguf::{GgufWriter, TensorSpec};
use llq_formats::imatrix::Imatrix;
use llq_kernels::QuantMode;
use llq_types::FileType;
use rayon::prelude::*;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to convert.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub policy: Policy,
    /// Replace an existing output file.
    pub overwrite: bool,
    /// Keep NaN/Inf weights instead of refusing them.
    pub allow_nonfinite: bool,
    /// Accept a quantized GGUF as input (its tensors are dequantized first).
    pub allow_requantize: bool,
    pub progress: bool,
    /// llama.cpp importance matrix (legacy `.dat` or GGUF) weighting the quantizers' rounding;
    /// also turns on `policy.has_imatrix`. See [`imatrix::match_imatrix`] for how names and
    /// sizes are checked.
    pub imatrix: Option<PathBuf>,
    /// How the imatrix steers the rounding (ggml's, or [`QuantMode::Unbiased`]).
    pub quant_mode: QuantMode,
    /// How the source checkpoint is read (`--rope-scaling-factor`).
    pub source: OpenOptions,
    /// A chat template replacing the source's default one (`--chat-template`).
    pub chat_template: Option<String>,
    /// Write a split set rather than one file (`--split-max-size`, `--split-max-tensors`,
    /// `--keep-split`).
    pub split: Option<Split>,
    /// Choose the tensor types to fit a budget (`--fit`, `--target-bpw`, `--fit-ram`) instead
    /// of the policy's.
    pub fit: Option<FitOptions>,
    /// Error-compensated rounding over a calibration text (`--quant-mode gptq`) for the
    /// matrices whose type allows it.
    pub gptq: Option<GptqOptions>,
}

impl ConvertOptions {
    /// Convert with `policy` and the defaults: no overwrite, finite weights only, no
    /// requantizing, a progress bar, no imatrix, ggml's rounding.
    pub fn new(policy: Policy) -> ConvertOptions {
        ConvertOptions {
            policy,
            overwrite: false,
            allow_nonfinite: false,
            allow_requantize: false,
            progress: true,
            imatrix: None,
            quant_mode: QuantMode::default(),
            source: OpenOptions::default(),
            chat_template: None,
            split: None,
            fit: None,
            gptq: None,
        }
    }
}

/// How to split the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Split {
    Limit(SplitLimit),
    /// As the input GGUF is split (the same tensors in each file).
    LikeInput,
}

/// What a conversion did.
#[derive(Clone, Debug)]
pub struct ConvertReport {
    /// The files written: OUT, or the files of a split set.
    pub outputs: Vec<PathBuf>,
    /// What `--fit` chose, and why.
    pub fit: Option<FitReport>,
    /// What `--quant-mode gptq` did.
    pub gptq: Option<GptqReport>,
    pub tensors: Vec<TensorTarget>,
    /// Things the user should know that did not stop the conversion.
    pub warnings: Vec<String>,
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
    let mut policy = opts.policy.clone();
    policy.has_imatrix |= opts.imatrix.is_some();
    if opts.fit.is_some() {
        // Every weight quantized, so that each gets its imatrix entry; --fit decides the types.
        policy = Policy {
            pure: true,
            ..Policy::new(FileType::Q8_0)
        };
    }
    let targets = policy::assign(&source.hparams, &list, &policy)?;
    let mut kv = metadata::build(
        &source,
        opts.policy.file_type,
        opts.chat_template.as_deref(),
    );
    // Read and check the imatrix before the output file exists, so a bad one leaves no OUT.
    let (importance, mut warnings) = match &opts.imatrix {
        None => (vec![None; targets.len()], Vec::new()),
        Some(path) => {
            let imatrix = Imatrix::open(path)?;
            let matched = imatrix::match_imatrix(path, &imatrix, &targets)?;
            imatrix::add_metadata(&mut kv, path, &imatrix);
            (matched.importance, matched.warnings)
        }
    };
    let (targets, fitted) = match &opts.fit {
        None => (targets, None),
        Some(fit_opts) => {
            let (targets, report) = fit::fit(
                &source,
                &kv,
                &importance,
                opts.quant_mode,
                fit_opts,
                opts.progress,
            )?;
            metadata::set_file_type(&mut kv, report.file_type);
            (targets, Some(report))
        }
    };
    let mut compensated = match &opts.gptq {
        None => None,
        Some(g) => {
            let c = gptq::compensate(
                &source,
                &targets,
                &importance,
                g,
                opts.allow_nonfinite,
                opts.progress,
            )?;
            warnings.extend(c.report.warnings.iter().cloned());
            Some(c)
        }
    };
    let specs: Vec<TensorSpec> = targets
        .iter()
        .map(|p| TensorSpec {
            name: p.name.clone(),
            dims: p.ggml_dims(),
            ty: p.ty,
        })
        .collect();

    let sizes: Vec<u64> = targets.iter().map(|t| t.n_bytes() as u64).collect();
    let limit = match &opts.split {
        None => None,
        Some(Split::Limit(limit)) => Some(limit.clone()),
        Some(Split::LikeInput) => match &source.kind {
            SourceKind::Gguf { shards } => Some(SplitLimit::Counts(shards.clone())),
            _ => return Err(Error::Usage("--keep-split needs a GGUF input".into())),
        },
    };
    let parts = output::parts(out, &kv, &specs, &sizes, limit).ok_or_else(|| {
        Error::Usage(format!(
            "{}: the split limit asks for more than {} files",
            out.display(),
            llq_formats::gguf::split::MAX_SHARDS
        ))
    })?;
    let files = parts
        .iter()
        .map(|p| AtomicFile::create(&p.path, opts.overwrite))
        .collect::<Result<Vec<_>>>()?;
    let bar = opts
        .progress
        .then(|| progress::bytes_bar(source.source_bytes()));
    let mut work = source
        .tensors
        .iter()
        .zip(&targets)
        .zip(&importance)
        .enumerate();
    for (part, file) in parts.iter().zip(&files) {
        let write_err = |e: std::io::Error| Error::io(&part.path, "cannot write", e);
        let buffered = BufWriter::with_capacity(1 << 22, file.file());
        let mut writer = GgufWriter::new(buffered, &part.kv, &part.specs).map_err(write_err)?;
        for (i, ((tensor, target), importance)) in work.by_ref().take(part.specs.len()) {
            if let Some(bar) = &bar {
                bar.set_message(format!(
                    "tensor {}/{} {}",
                    i + 1,
                    targets.len(),
                    target.name
                ));
            }
            let spilled = match &mut compensated {
                Some(c) => c.spill.get(&target.name).map_err(|e| {
                    Error::io(&part.path, "cannot read back a compensated tensor", e)
                })?,
                None => None,
            };
            let on_progress = |bytes| {
                if let Some(bar) = &bar {
                    bar.inc(bytes)
                }
            };
            if let Some(bytes) = spilled {
                writer.write_tensor_data(&bytes).map_err(write_err)?;
                on_progress(tensor.reader.source_bytes());
                continue;
            }
            let importance = importance.as_deref();
            convert_tensor(tensor, target, importance, opts, &mut writer, on_progress).map_err(
                |e| match e {
                    TensorError::Io(e) => write_err(e),
                    TensorError::Data(msg) => Error::file(src, msg),
                },
            )?;
        }
        writer
            .finish()
            .and_then(|mut w| w.flush())
            .map_err(write_err)?;
    }
    atomic_file::commit_all(files)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let outputs: Vec<PathBuf> = parts.into_iter().map(|p| p.path).collect();
    Ok(ConvertReport {
        output_bytes: outputs
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum(),
        outputs,
        fit: fitted,
        gptq: compensated.map(|c| c.report),
        input_bytes: source.source_bytes(),
        tensors: targets,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// An already-quantized GGUF loses quality twice; refuse it unless asked.
fn check_requantize(source: &Source, opts: &ConvertOptions) -> Result<()> {
    if !matches!(source.kind, SourceKind::Gguf { .. }) || opts.allow_requantize {
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
fn convert_tensor<W: Write + Send>(
    tensor: &SourceTensor,
    target: &TensorTarget,
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
        target,
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
    target: &'a TensorTarget,
    importance: Option<&'a [f32]>,
    allow_nonfinite: bool,
    quant_mode: QuantMode,
    rows_per_task: usize,
}

impl ChunkEncoder<'_> {
    fn row_len(&self) -> usize {
        *self.target.shape.last().unwrap_or(&1)
    }

    /// Output bytes of one source row (a row of the reader may hold several GGUF rows).
    fn out_row_bytes(&self) -> usize {
        let row_len = self.row_len();
        self.target
            .ty
            .row_bytes(row_len)
            .expect("the policy checked the block fit")
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
        let gguf_row_bytes = self.target.ty.row_bytes(row_len).expect("checked");
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
                        self.target.ty,
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
pub(super) fn check_finite(
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
