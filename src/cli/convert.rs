//! `llq convert` and `llq quantize`: what they print is a per-type table, every warning and
//! fallback, a closing line, and the same as JSON on request.

use super::args::{self, QuantArgs};
use crate::checkpoint::verify;
use crate::error::{Error, Result};
use crate::quantize::gptq::Inputs;
use crate::quantize::{self, policy, ConvertReport, Split};
use clap::Args;
use llq_types::FileType;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Meta folder (consolidated.*.pth, params.json, tokenizer.model), Hugging Face folder
    /// (config.json, *.safetensors, tokenizer.model or tokenizer.json) or a single
    /// .safetensors file.
    src: PathBuf,
    /// Output GGUF file.
    #[arg(short, long)]
    output: PathBuf,
    /// Output type (case-insensitive).
    #[arg(short = 't', long = "type", value_parser = args::file_type,
          help = format!("Output type, case-insensitive (default F16): {}", args::file_type_names()))]
    file_type: Option<FileType>,
    /// Run `llq verify` on SRC first (checklist.chk MD5s, shards against the index).
    #[arg(long)]
    verify: bool,
    /// Llama 3.1 RoPE scaling factor for `rope_freqs.weight` (Meta params.json: default 8,
    /// use 32 for Llama 3.2 1B/3B; HF: default from config.json's rope_scaling).
    #[arg(long, value_name = "F")]
    rope_scaling_factor: Option<f32>,
    #[command(flatten)]
    quant: QuantArgs,
}

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    input: PathBuf,
    output: PathBuf,
    /// Output type (as for convert); none with --fit, --target-bpw or --fit-ram.
    #[arg(value_name = "TYPE", value_parser = args::file_type)]
    file_type: Option<FileType>,
    /// Accept an already-quantized input (quality is lost twice).
    #[arg(long)]
    allow_requantize: bool,
    /// A split input is written split the same way (the same tensors in each file); without
    /// this, and without --split-max-*, it is merged into OUT.
    #[arg(long, conflicts_with_all = ["split_max_size", "split_max_tensors"])]
    keep_split: bool,
    #[command(flatten)]
    quant: QuantArgs,
}

pub fn convert(a: ConvertArgs) -> Result<()> {
    let ft = a
        .file_type
        .or((!a.quant.fitting()).then_some(FileType::F16));
    let mut opts = a.quant.options(ft, false)?;
    opts.source.rope_scaling_factor = a.rope_scaling_factor;
    if a.verify {
        verify::verify(&a.src)?;
    }
    let report = quantize::convert(&a.src, &a.output, &opts)?;
    print_report(&a.output, &report, a.quant.json.as_deref())
}

pub fn quantize(a: QuantizeArgs) -> Result<()> {
    let mut opts = a.quant.options(a.file_type, a.allow_requantize)?;
    if a.keep_split {
        opts.split = Some(Split::LikeInput);
    }
    let report = quantize::convert(&a.input, &a.output, &opts)?;
    print_report(&a.output, &report, a.quant.json.as_deref())
}

/// Per-type summary, fallbacks, and the closing line; the same as JSON with `--json FILE`.
fn print_report(out: &Path, r: &ConvertReport, json_path: Option<&Path>) -> Result<()> {
    let types = policy::summarize(&r.tensors);
    eprintln!(
        "{:<6} {:>8} {:>14} {:>8}",
        "type", "tensors", "bytes", "bpw"
    );
    for (ty, n, bytes, elems) in &types {
        let bpw = *bytes as f64 * 8.0 / (*elems).max(1) as f64;
        eprintln!("{:<6} {n:>8} {bytes:>14} {bpw:>8.3}", ty.name());
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(fit) = &r.fit {
        eprintln!("fit: {}", fit.method);
        eprintln!(
            "{:<28} {:<6} {:>12} {:>14}",
            "tensor", "type", "bytes", "predicted loss"
        );
        for t in &fit.tensors {
            eprintln!(
                "{:<28} {:<6} {:>12} {:>14.4e}",
                t.name,
                t.ty.name(),
                t.bytes,
                t.predicted_loss
            );
        }
        eprintln!(
            "fit: {} bytes ({:.3} bits per weight) for a budget of {}, predicted loss {:.4e}, \
             file type {}, {:.1} s choosing",
            fit.file_bytes,
            fit.bits_per_weight,
            fit.budget,
            fit.predicted_loss,
            fit.file_type,
            fit.measure_seconds
        );
    }
    if let Some(g) = &r.gptq {
        eprintln!(
            "gptq: {} matrices rounded with error compensation over {} chunks of {} tokens \
             (inputs of each layer from the {} model), {:.1} s",
            g.matrices,
            g.chunks,
            g.n_ctx,
            match g.inputs {
                Inputs::Quantized => "quantized",
                Inputs::Reference => "reference",
            },
            g.seconds
        );
    }
    for t in r.tensors.iter().filter(|t| t.fallback.is_some()) {
        eprintln!(
            "fallback: {}: {}",
            t.name,
            t.fallback.as_deref().unwrap_or("")
        );
    }
    let mb_s = r.input_bytes as f64 / 1e6 / r.seconds.max(1e-9);
    let written = match r.outputs.as_slice() {
        [one] => one.display().to_string(),
        many => format!(
            "{} files {} … {}",
            many.len(),
            many[0].display(),
            many[many.len() - 1].display()
        ),
    };
    eprintln!(
        "wrote {written}: {} tensors, {:.1} MiB, {:.2} s, {mb_s:.0} MB/s of input",
        r.tensors.len(),
        r.output_bytes as f64 / (1 << 20) as f64,
        r.seconds
    );
    let Some(path) = json_path else {
        return Ok(());
    };
    let report = json!({
        "output": out,
        "files": r.outputs,
        "fit": r.fit,
        "gptq": r.gptq,
        "output_bytes": r.output_bytes,
        "input_bytes": r.input_bytes,
        "seconds": r.seconds,
        "types": types.iter().map(|(ty, n, bytes, elems)| json!({
            "type": ty.name(), "tensors": n, "bytes": bytes,
            "bits_per_weight": *bytes as f64 * 8.0 / (*elems).max(1) as f64,
        })).collect::<Vec<_>>(),
        "tensors": r.tensors.iter().map(|t| json!({
            "name": t.name, "shape": t.shape, "type": t.ty.name(),
            "bytes": t.n_bytes(), "fallback": t.fallback,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&report).expect("JSON values serialize");
    std::fs::write(path, text).map_err(|e| Error::io(path, "cannot write report", e))
}
