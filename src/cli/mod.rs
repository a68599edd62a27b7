//! The command line (clap): a thin layer that parses, calls the library and prints.

mod compare;
mod eval;
mod report;

use crate::convert::{self, ConvertOptions};
use crate::error::{Error, Result};
use crate::inspect;
use crate::plan::{self, PlanOptions, TypeOverride};
use crate::runtime::generate::GenerateOptions;
use crate::runtime::run_command;
use clap::{Args, Parser, Subcommand};
use llq_kernels::QuantMode;
use llq_types::FileType;
use std::path::PathBuf;

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
        /// (config.json, *.safetensors, tokenizer.model or tokenizer.json) or a single
        /// .safetensors file.
        src: PathBuf,
        /// Output GGUF file.
        #[arg(short, long)]
        output: PathBuf,
        /// Output type: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S/M/L,
        /// Q4_K_S/M, Q5_K_S/M, Q6_K (case-insensitive).
        #[arg(short = 't', long = "type", default_value = "f16")]
        file_type: String,
        /// Run `llq verify` on SRC first (checklist.chk MD5s, shards against the index).
        #[arg(long)]
        verify: bool,
        /// Llama 3.1 RoPE scaling factor for `rope_freqs.weight` (Meta params.json: default 8,
        /// use 32 for Llama 3.2 1B/3B; HF: default from config.json's rope_scaling).
        #[arg(long, value_name = "F")]
        rope_scaling_factor: Option<f32>,
        #[command(flatten)]
        quant: QuantArgs,
    },
    /// Check a checkpoint folder before converting it: the MD5 of every file in Meta's
    /// checklist.chk; every shard named by a Hugging Face index exists, parses and holds
    /// exactly the tensors the index assigns to it.
    Verify { dir: PathBuf },
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
    /// Generate text from a prompt.
    Run {
        model: PathBuf,
        #[arg(short, long)]
        prompt: String,
        /// Tokens to generate at most.
        #[arg(short = 'n', long, default_value_t = 128)]
        n_predict: usize,
        /// Temperature; 0 is greedy (deterministic).
        #[arg(long, default_value_t = 0.8)]
        temp: f32,
        /// Keep the K most likely tokens (0: all).
        #[arg(long, default_value_t = 40)]
        top_k: usize,
        /// Keep the most likely tokens up to this probability mass.
        #[arg(long, default_value_t = 0.95)]
        top_p: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Context size (prompt + generated tokens).
        #[arg(long, default_value_t = 2048)]
        ctx: usize,
    },
    /// Perplexity of a text, computed as llama.cpp's llama-perplexity does.
    Perplexity {
        model: PathBuf,
        #[arg(short, long, value_name = "TEXT")]
        file: PathBuf,
        #[arg(long, default_value_t = 512)]
        ctx: usize,
        /// Evaluate at most this many chunks.
        #[arg(long)]
        chunks: Option<usize>,
        /// Print JSON instead of `PPL = x +/- e`.
        #[arg(long)]
        json: bool,
    },
    /// Importance matrix for `--imatrix`: mean squared input of every column of every block
    /// matrix over chunks of a text, computed as llama.cpp's llama-imatrix does, written in its
    /// legacy .dat format.
    Imatrix {
        model: PathBuf,
        #[arg(short, long, value_name = "TEXT")]
        file: PathBuf,
        /// Output .dat file.
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 512)]
        ctx: usize,
        /// Use at most this many chunks.
        #[arg(long)]
        chunks: Option<usize>,
        /// Also collect output.weight.
        #[arg(long)]
        process_output: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Prompt-processing and generation speed (like llama-bench) and the memory roofline.
    Bench {
        model: PathBuf,
        /// Prompt tokens.
        #[arg(short = 'p', long, default_value_t = 512)]
        pp: usize,
        /// Generated tokens.
        #[arg(short = 'n', long, default_value_t = 128)]
        tg: usize,
        /// Repetitions (the best is reported).
        #[arg(short = 'r', long, default_value_t = 3)]
        reps: usize,
        #[arg(long)]
        json: bool,
    },
    /// Compare a quantized GGUF with its reference over a text: PPL of each and their ratio,
    /// KL divergence, top-1 agreement, RMS Δp (llama.cpp's --kl-divergence statistics).
    /// Exit code 1 when a gate fails, 2 for usage or input errors.
    Compare {
        /// Reference: an F32/F16/BF16 GGUF, or a Meta / Hugging Face checkpoint folder (run as F32).
        reference: PathBuf,
        /// Quantized GGUF.
        quant: PathBuf,
        #[arg(short, long, value_name = "TEXT")]
        file: Option<PathBuf>,
        #[arg(long, default_value_t = 512)]
        ctx: usize,
        /// Evaluate at most this many chunks.
        #[arg(long)]
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
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Per-tensor relative RMSE of a quantized GGUF's weights against the reference, worst first.
    #[command(name = "error")]
    TensorError {
        reference: PathBuf,
        quant: PathBuf,
        /// Also write the rows as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Per file type: exact output size, bits per weight, KV cache at --ctx, and whether it fits.
    Plan {
        /// Checkpoint folder or GGUF.
        src: PathBuf,
        /// Memory available, e.g. 8GiB.
        #[arg(long)]
        ram: Option<String>,
        /// Context for the KV cache size.
        #[arg(long, default_value_t = 4096)]
        ctx: usize,
        #[arg(long)]
        json: bool,
        /// Also convert to each type and compare it with the F32 model on this text.
        #[arg(long, value_name = "TEXT")]
        measure: Option<PathBuf>,
        /// Context of the --measure comparisons.
        #[arg(long, default_value_t = 512)]
        measure_ctx: usize,
        /// Chunks of the --measure comparisons (default: all).
        #[arg(long)]
        chunks: Option<usize>,
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
    /// How --imatrix steers the rounding: `ggml` (default) is llama-quantize's, byte for byte;
    /// `unbiased` keeps the block layouts (any GGUF reader loads the file) but rescales each
    /// block so that its importance-weighted gain is 1 instead of ggml's shrink, after refining
    /// Q4_0/Q5_0 levels. Needs --imatrix.
    #[arg(long, value_name = "MODE", default_value = "ggml")]
    quant_mode: String,
    /// Also write the per-type report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl QuantArgs {
    fn options(&self, file_type: &str, allow_requantize: bool) -> Result<ConvertOptions> {
        let file_type = parse_file_type(file_type)?;
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
        let quant_mode = match self.quant_mode.to_ascii_lowercase().as_str() {
            "ggml" => QuantMode::Ggml,
            "unbiased" if self.imatrix.is_none() => {
                return Err(Error::Usage(
                    "--quant-mode unbiased changes only importance-weighted rounding: \
                     it needs --imatrix"
                        .into(),
                ))
            }
            "unbiased" => QuantMode::Unbiased,
            other => {
                return Err(Error::Usage(format!(
                    "--quant-mode {other}: expected ggml or unbiased"
                )))
            }
        };
        Ok(ConvertOptions {
            plan,
            overwrite: self.force,
            allow_nonfinite: self.allow_nonfinite,
            allow_requantize,
            progress: !self.quiet,
            imatrix: self.imatrix.clone(),
            quant_mode,
            source: Default::default(),
        })
    }
}

/// A file type by name (case-insensitive); the error lists the valid names.
fn parse_file_type(name: &str) -> Result<FileType> {
    FileType::from_name(name).ok_or_else(|| {
        let names: Vec<_> = FileType::all().map(FileType::name).collect();
        Error::Usage(format!(
            "unknown type {name:?}; valid types: {}",
            names.join(", ")
        ))
    })
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
            verify,
            rope_scaling_factor,
            quant,
        } => {
            let mut opts = quant.options(&file_type, false)?;
            opts.source.rope_scaling_factor = rope_scaling_factor;
            if verify {
                crate::verify::verify(&src)?;
            }
            let report = convert::convert(&src, &output, &opts)?;
            report::print_report(&output, &report, quant.json.as_deref())
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
            report::print_report(&output, &report, quant.json.as_deref())
        }
        Command::Verify { dir } => {
            let report = crate::verify::verify(&dir)?;
            for line in &report.checked {
                println!("{line}");
            }
            println!("{}: OK", dir.display());
            Ok(())
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
        } => eval::tokenize(&model, file.as_deref(), prompt.as_deref(), json, !no_bos),
        Command::Run {
            model,
            prompt,
            n_predict,
            temp,
            top_k,
            top_p,
            seed,
            ctx,
        } => {
            let opts = GenerateOptions {
                prompt,
                n_predict,
                n_ctx: ctx,
                sampler: eval::sampler(temp, top_k, top_p, seed),
            };
            run_command(|| eval::run(&model, &opts))
        }
        Command::Perplexity {
            model,
            file,
            ctx,
            chunks,
            json,
        } => run_command(|| eval::perplexity(&model, &file, ctx, chunks, json)),
        Command::Imatrix {
            model,
            file,
            output,
            ctx,
            chunks,
            process_output,
            quiet,
        } => run_command(|| {
            eval::imatrix(&eval::ImatrixArgs {
                model,
                text: file,
                output,
                n_ctx: ctx,
                max_chunks: chunks,
                process_output,
                progress: !quiet,
            })
        }),
        Command::Bench {
            model,
            pp,
            tg,
            reps,
            json,
        } => run_command(|| eval::bench(&model, pp, tg, reps, json)),
        Command::Compare {
            reference,
            quant,
            file,
            ctx,
            chunks,
            json,
            per_tensor,
            max_kld,
            max_ppl_ratio,
            min_top1,
            quiet,
        } => run_command(|| {
            compare::compare_cmd(&compare::CompareArgs {
                reference,
                quant,
                text: file,
                ctx,
                chunks,
                json,
                per_tensor,
                gates: crate::eval::compare::Gates {
                    max_kld,
                    max_ppl_ratio,
                    min_top1,
                },
                quiet,
            })
        }),
        Command::TensorError {
            reference,
            quant,
            json,
        } => compare::error_cmd(&reference, &quant, json.as_deref()),
        Command::Plan {
            src,
            ram,
            ctx,
            json,
            measure,
            measure_ctx,
            chunks,
        } => run_command(|| {
            compare::plan_cmd(&compare::PlanArgs {
                src,
                ram,
                ctx,
                json,
                measure,
                measure_ctx,
                chunks,
            })
        }),
    }
}
