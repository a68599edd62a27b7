//! `llq compare` (what quantization cost over a text, with quality gates) and `llq error`
//! (how far each tensor's weights moved).

use super::args;
use crate::checkpoint::Source;
use crate::error::{Error, Result};
use crate::eval::compare::{self, CompareSpec, Gates};
use crate::eval::plot::{self, Point};
use crate::eval::tensor_error::{tensor_errors, TensorErrorRow};
use crate::runtime::run_command;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Reference: an F32/F16/BF16 GGUF, or a Meta / Hugging Face checkpoint folder (run as F32).
    reference: PathBuf,
    /// Quantized GGUF; several are each compared with the reference (loaded once).
    #[arg(required = true, num_args = 1..)]
    quants: Vec<PathBuf>,
    #[arg(short, long, value_name = "TEXT")]
    file: Option<PathBuf>,
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Evaluate at most this many chunks.
    #[arg(long, value_parser = args::count)]
    chunks: Option<usize>,
    /// Also write the statistics as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also print each tensor's relative RMSE against the reference, worst first.
    #[arg(long)]
    per_tensor: bool,
    /// Fail (exit 1) when the mean KLD exceeds this.
    #[arg(long, value_name = "X")]
    max_kld: Option<f64>,
    /// Fail (exit 1) when PPL(quant)/PPL(ref) exceeds this.
    #[arg(long, value_name = "R")]
    max_ppl_ratio: Option<f64>,
    /// Fail (exit 1) when top-1 agreement is below this (fraction 0.9 or percentage 90).
    #[arg(long, value_name = "F")]
    min_top1: Option<f64>,
    /// Draw file size against KLD for the compared files to this SVG.
    #[arg(long, value_name = "FILE.svg", requires = "file")]
    plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
pub struct TensorErrorArgs {
    reference: PathBuf,
    quant: PathBuf,
    /// Also write the rows as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub fn compare(a: CompareArgs) -> Result<()> {
    if a.file.is_none() && !a.per_tensor {
        return Err(Error::Usage(
            "give -f TEXT (or --per-tensor for weight errors only)".into(),
        ));
    }
    let several = a.quants.len() > 1;
    let mut reports: Vec<serde_json::Map<String, serde_json::Value>> =
        a.quants.iter().map(|_| serde_json::Map::new()).collect();
    let mut results = Vec::new();
    if let Some(text) = &a.file {
        let spec = CompareSpec {
            reference: &a.reference,
            quants: &a.quants,
            text,
            n_ctx: a.ctx,
            max_chunks: a.chunks,
            progress: !a.quiet,
        };
        results = run_command(|| compare::compare_files(&spec))?;
        for ((r, quant), report) in results.iter().zip(&a.quants).zip(&mut reports) {
            if several {
                println!("== {}", quant.display());
            }
            print!("{}", compare::render_table(r));
            if let serde_json::Value::Object(m) = serde_json::to_value(r).expect("serializes") {
                report.extend(m);
            }
        }
    }
    if a.per_tensor {
        for (quant, report) in a.quants.iter().zip(&mut reports) {
            let rows = print_tensor_errors(&a.reference, quant)?;
            report.insert(
                "per_tensor".into(),
                serde_json::to_value(&rows).expect("serializes"),
            );
        }
    }
    if let Some(path) = &a.json {
        match reports.as_slice() {
            [one] => write_json(path, one)?,
            many => {
                let files: Vec<_> = a
                    .quants
                    .iter()
                    .zip(many)
                    .map(|(q, r)| serde_json::json!({"quant": q, "stats": r}))
                    .collect();
                write_json(path, &serde_json::json!({ "files": files }))?;
            }
        }
    }
    if let Some(svg) = &a.plot {
        let points = a
            .quants
            .iter()
            .zip(&results)
            .map(|(q, r)| {
                Ok(Point {
                    label: q
                        .file_stem()
                        .map_or(String::new(), |s| s.to_string_lossy().into()),
                    bytes: file_bytes(q)?,
                    kld: r.kld_mean,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        plot::size_quality_svg(svg, "llq compare: size and KL divergence", &points, None)?;
    }
    let gates = Gates {
        max_kld: a.max_kld,
        max_ppl_ratio: a.max_ppl_ratio,
        min_top1: a.min_top1,
    };
    for (r, quant) in results.iter().zip(a.quants) {
        if let Some(reason) = gates.check(r) {
            return Err(Error::GateFailed { quant, reason });
        }
    }
    Ok(())
}

/// The bytes of a GGUF, all files of a split set counted.
fn file_bytes(path: &Path) -> Result<u64> {
    let file = llq_formats::gguf::GgufFile::open(path)?;
    file.shards()
        .iter()
        .map(|s| {
            std::fs::metadata(&s.path)
                .map(|m| m.len())
                .map_err(|e| Error::io(&s.path, "cannot read", e))
        })
        .sum()
}

pub fn tensor_error(a: TensorErrorArgs) -> Result<()> {
    let rows = print_tensor_errors(&a.reference, &a.quant)?;
    if let Some(path) = &a.json {
        write_json(path, &rows)?;
    }
    Ok(())
}

fn print_tensor_errors(reference: &Path, quant: &Path) -> Result<Vec<TensorErrorRow>> {
    let rows = tensor_errors(&Source::open(reference)?, &Source::open(quant)?)?;
    println!(
        "{:<28} {:>6} {:>6} {:>12}",
        "tensor", "ref", "quant", "rel RMSE"
    );
    for row in &rows {
        println!(
            "{:<28} {:>6} {:>6} {:>12.6}",
            row.name, row.ref_type, row.quant_type, row.rel_rmse
        );
    }
    Ok(rows)
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(value).expect("serializes");
    std::fs::write(path, s + "\n").map_err(|e| Error::io(path, "cannot write", e))
}
