//! The command line (clap): one file per command, each only parsing its arguments, calling the
//! library and printing. The exit code is decided here, in [`exit_code`].

mod args;
mod bench;
mod compare;
mod convert;
mod imatrix;
mod inspect;
mod meta;
mod perplexity;
mod plan;
mod run;
mod tokenize;
mod verify;

use crate::error::{Error, Result};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "llq",
    version,
    about = "LLaMA checkpoints to quantized GGUF, and what it cost"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Convert a Meta or Hugging Face checkpoint (folder or .safetensors file) to GGUF.
    Convert(convert::ConvertArgs),
    /// Check a checkpoint folder before converting it: the MD5 of every file in Meta's
    /// checklist.chk; every shard named by a Hugging Face index exists, parses and holds
    /// exactly the tensors the index assigns to it.
    Verify(verify::VerifyArgs),
    /// Requantize an F32/F16/BF16 GGUF to another type.
    Quantize(convert::QuantizeArgs),
    /// Show the header, metadata and tensor table of a GGUF, safetensors or .pth file.
    Inspect(inspect::InspectArgs),
    /// Print a GGUF's metadata, or write a copy with keys set, deleted or a new chat template
    /// (tensor data copied as it is).
    Meta(meta::MetaArgs),
    /// Print the token ids of each line of a text file (or of one prompt), as llama.cpp would.
    Tokenize(tokenize::TokenizeArgs),
    /// Generate text from a prompt.
    Run(run::RunArgs),
    /// Perplexity of a text, computed as llama.cpp's llama-perplexity does.
    Perplexity(perplexity::PerplexityArgs),
    /// Importance matrix for `--imatrix`: mean squared input of every column of every block
    /// matrix over chunks of a text, computed as llama.cpp's llama-imatrix does, written in its
    /// legacy .dat format.
    Imatrix(imatrix::ImatrixArgs),
    /// Prompt-processing and generation speed (like llama-bench) and the memory roofline.
    Bench(bench::BenchArgs),
    /// Compare a quantized GGUF with its reference over a text: PPL of each and their ratio,
    /// KL divergence, top-1 agreement, RMS Δp (llama.cpp's --kl-divergence statistics).
    /// Exit code 1 when a gate fails, 2 for usage or input errors.
    Compare(compare::CompareArgs),
    /// Per-tensor relative RMSE of a quantized GGUF's weights against the reference, worst first.
    #[command(name = "error")]
    TensorError(compare::TensorErrorArgs),
    /// Per file type: exact output size, bits per weight, KV cache at --ctx, and whether it fits.
    Plan(plan::PlanArgs),
}

/// Parse the command line, run it, print an error and exit with [`exit_code`].
pub fn main() {
    crate::atomic_file::install_signal_cleanup();
    #[cfg(unix)]
    // SAFETY: restores the default action of SIGPIPE before any thread starts, so that output
    // piped into `head` ends the process quietly, like any Unix tool, instead of a panic in
    // println!. (Rust sets SIGPIPE to "ignore" for its programs.)
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            eprintln!("llq: error: {}", one_line(&e.to_string()));
            std::process::exit(2);
        }
    };
    let input_is_the_question = cli.command.reports_input_errors_as_usage();
    if let Err(e) = run(cli) {
        eprintln!("llq: error: {e}");
        std::process::exit(exit_code(&e, input_is_the_question));
    }
}

/// A clap usage error on one line, like llq's own errors: its message and hints, without the
/// leading "error: " and the closing "For more information, try '--help'".
fn one_line(clap_message: &str) -> String {
    clap_message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}

/// The exit code of a failed command: 130 for Ctrl-C; 1 for a failed quality gate; 2 for a
/// usage error, and for any input error of the measuring commands (whose exit code 1 means
/// "the quality gate failed", so it must not also mean "could not read the file"); else 1.
fn exit_code(e: &Error, input_is_the_question: bool) -> i32 {
    match e {
        Error::Interrupted => 130,
        Error::GateFailed { .. } => 1,
        Error::Usage(_) => 2,
        _ if input_is_the_question => 2,
        _ => 1,
    }
}

impl Command {
    /// The measuring commands, whose exit code 1 is reserved for a failed gate.
    fn reports_input_errors_as_usage(&self) -> bool {
        matches!(
            self,
            Command::Compare(_) | Command::TensorError(_) | Command::Plan(_)
        )
    }
}

/// Run a parsed command line.
fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::Usage(format!("--threads {n}: {e}")))?;
    }
    match cli.command {
        Command::Convert(a) => convert::convert(a),
        Command::Quantize(a) => convert::quantize(a),
        Command::Verify(a) => verify::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Meta(a) => meta::run(a),
        Command::Tokenize(a) => tokenize::run(a),
        Command::Run(a) => run::run(a),
        Command::Perplexity(a) => perplexity::run(a),
        Command::Imatrix(a) => imatrix::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Compare(a) => compare::compare(a),
        Command::TensorError(a) => compare::tensor_error(a),
        Command::Plan(a) => plan::run(a),
    }
}
