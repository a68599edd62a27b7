//! The command line (clap): a thin layer that parses, calls the library and prints.

use crate::convert::{self, ConvertOptions, ConvertReport};
use crate::error::{Error, Result};
use crate::inspect;
use crate::plan::{self, FileType, PlanOptions, TypeOverride};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "llq",
    version,
    about = "LLaMA checkpoints to quantized GGUF, and what it cost"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert a Meta or Hugging Face checkpoint (folder or .safetensors file) to GGUF.
    Convert {
        /// Meta folder (consolidated.*.pth, params.json, tokenizer.model), Hugging Face folder
        /// (config.json, *.safetensors, tokenizer.model) or a single .safetensors file.
        src: PathBuf,
        /// Output GGUF file.
        #[arg(short, long)]
        output: PathBuf,
        /// Output type: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S/M/L,
        /// Q4_K_S/M, Q5_K_S/M, Q6_K (case-insensitive).
        #[arg(short = 't', long = "type", default_value = "f16")]
        file_type: String,
        #[command(flatten)]
        quant: QuantArgs,
    },
    /// Requantize an F32/F16/BF16 GGUF to another type.
    Quantize {
        input: PathBuf,
        output: PathBuf,
        /// Output type (as for convert).
        #[arg(value_name = "TYPE")]
        file_type: String,
        /// Accept an already-quantized input (quality is lost twice).
        #[arg(long)]
        allow_requantize: bool,
        #[command(flatten)]
        quant: QuantArgs,
    },
    /// Show the header, metadata and tensor table of a GGUF, safetensors or .pth file.
    Inspect {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the token ids of each line of a text file (or of one prompt), as llama.cpp would.
    Tokenize {
        /// GGUF model whose tokenizer to use.
        model: PathBuf,
        /// Text file: each line is tokenized on its own ("-" reads standard input).
        #[arg(
            short,
            long,
            value_name = "TEXT",
            conflicts_with = "prompt",
            required_unless_present = "prompt"
        )]
        file: Option<PathBuf>,
        /// One string to tokenize instead of a file.
        #[arg(short, long)]
        prompt: Option<String>,
        /// Print a JSON array of arrays instead of one line of ids per input line.
        #[arg(long)]
        json: bool,
        /// No BOS (nor EOS, for models that append one): llama.cpp's add_special = false.
        #[arg(long)]
        no_bos: bool,
    },
}

/// Options shared by convert and quantize.
#[derive(Args, Debug)]
pub struct QuantArgs {
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
    /// Quantize every weight to the base type (no per-tensor mix rules).
    #[arg(long)]
    pure: bool,
    /// Override types of tensors whose name matches a regex: PATTERN=TYPE (repeatable).
    #[arg(long = "tensor-type", value_name = "PATTERN=TYPE")]
    tensor_types: Vec<String>,
    /// Type of output.weight.
    #[arg(long, value_name = "TYPE")]
    output_tensor_type: Option<String>,
    /// Type of token_embd.weight.
    #[arg(long, value_name = "TYPE")]
    token_embedding_type: Option<String>,
    /// Keep NaN/Inf weights instead of refusing the input.
    #[arg(long)]
    allow_nonfinite: bool,
    /// llama.cpp importance matrix (llama-imatrix's legacy .dat or GGUF output) weighting the
    /// rounding of quantized tensors as llama-quantize does; also gives ffn_down more bits in
    /// Q4_0/Q5_0 files. Entries are matched by GGUF tensor name: an entry whose size is not the
    /// tensor's row length is an error (token_embd.weight: warning), tensors without an entry
    /// and entries without a tensor are warnings, and no matching entry at all is an error.
    #[arg(long, value_name = "FILE")]
    imatrix: Option<PathBuf>,
    /// Also write the per-type report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl QuantArgs {
    fn options(&self, file_type: &str, allow_requantize: bool) -> Result<ConvertOptions> {
        let file_type = FileType::parse(file_type).map_err(Error::Usage)?;
        let tensor_type = |t: &Option<String>| {
            t.as_deref()
                .map(plan::parse_tensor_type)
                .transpose()
                .map_err(Error::Usage)
        };
        let mut plan = PlanOptions::new(file_type);
        plan.pure = self.pure;
        plan.overrides = self
            .tensor_types
            .iter()
            .map(|s| TypeOverride::parse(s))
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::Usage)?;
        plan.output_type = tensor_type(&self.output_tensor_type)?;
        plan.token_embedding_type = tensor_type(&self.token_embedding_type)?;
        Ok(ConvertOptions {
            plan,
            overwrite: self.force,
            allow_nonfinite: self.allow_nonfinite,
            allow_requantize,
            progress: !self.quiet,
            imatrix: self.imatrix.clone(),
        })
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::Usage(format!("--threads {n}: {e}")))?;
    }
    match cli.command {
        Command::Convert {
            src,
            output,
            file_type,
            quant,
        } => {
            let opts = quant.options(&file_type, false)?;
            let report = convert::convert(&src, &output, &opts)?;
            print_report(&output, &report, quant.json.as_deref())
        }
        Command::Quantize {
            input,
            output,
            file_type,
            allow_requantize,
            quant,
        } => {
            let opts = quant.options(&file_type, allow_requantize)?;
            let report = convert::convert(&input, &output, &opts)?;
            print_report(&output, &report, quant.json.as_deref())
        }
        Command::Inspect { file, json } => {
            let d = inspect::describe(&file)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&d).expect("JSON values serialize")
                );
            } else {
                print!("{}", inspect::render_text(&file, &d));
            }
            Ok(())
        }
        Command::Tokenize {
            model,
            file,
            prompt,
            json,
            no_bos,
        } => tokenize(&model, file.as_deref(), prompt.as_deref(), json, !no_bos),
    }
}

/// Per-type summary, fallbacks, and the closing line; the same as JSON with `--json FILE`.
fn print_report(out: &Path, r: &ConvertReport, json_path: Option<&Path>) -> Result<()> {
    let types = plan::summarize(&r.tensors);
    eprintln!(
        "{:<6} {:>8} {:>14} {:>8}",
        "type", "tensors", "bytes", "bpw"
    );
    for (ty, n, bytes, elems) in &types {
        let bpw = *bytes as f64 * 8.0 / (*elems).max(1) as f64;
        eprintln!("{:<6} {n:>8} {bytes:>14} {bpw:>8.3}", ty.name());
    }
    for t in r.tensors.iter().filter(|t| t.fallback.is_some()) {
        eprintln!(
            "fallback: {}: {}",
            t.name,
            t.fallback.as_deref().unwrap_or("")
        );
    }
    let mb_s = r.input_bytes as f64 / 1e6 / r.seconds.max(1e-9);
    eprintln!(
        "wrote {}: {} tensors, {:.1} MiB, {:.2} s, {mb_s:.0} MB/s of input",
        out.display(),
        r.tensors.len(),
        r.output_bytes as f64 / (1 << 20) as f64,
        r.seconds
    );
    let Some(path) = json_path else {
        return Ok(());
    };
    let report = json!({
        "output": out,
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

/// `llq tokenize`: one line of space-separated ids (or one JSON array) per input line.
fn tokenize(
    model: &Path,
    file: Option<&Path>,
    prompt: Option<&str>,
    json: bool,
    add_bos: bool,
) -> Result<()> {
    use crate::runtime::tokenizer::Tokenizer;
    use std::io::{Read, Write};
    let gguf = llq_formats::gguf::GgufFile::open(model)?;
    let tok = Tokenizer::from_gguf(&gguf).map_err(|e| Error::file(model, e))?;
    let text = match (prompt, file) {
        (Some(p), _) => p.to_string(),
        (None, Some(path)) => {
            let bytes = if path == Path::new("-") {
                let mut b = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut b)
                    .map_err(|e| Error::io(path, "cannot read standard input", e))?;
                b
            } else {
                std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?
            };
            String::from_utf8(bytes).map_err(|e| {
                Error::file(
                    path,
                    format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
                )
            })?
        }
        (None, None) => return Err(Error::Usage("give -f TEXT or -p PROMPT".into())),
    };
    // A prompt is one input; a file is its lines ("\n" or "\r\n" endings, as str::lines).
    let lines: Vec<&str> = match prompt {
        Some(_) => vec![text.as_str()],
        None => text.lines().collect(),
    };
    // BOS (and EOS) as the model's add_bos_token / add_eos_token say, unless --no-bos.
    let ids: Vec<Vec<u32>> = lines.iter().map(|l| tok.tokenize(l, add_bos)).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let write_err = |e| Error::io("<stdout>", "cannot write", e);
    if json {
        let s = serde_json::to_string(&ids).expect("ids serialize");
        writeln!(out, "{s}").map_err(write_err)?;
    } else {
        for line in &ids {
            let strs: Vec<String> = line.iter().map(u32::to_string).collect();
            writeln!(out, "{}", strs.join(" ")).map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)
}
