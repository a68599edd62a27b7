//! Parsers for the values the commands share (types, sizes, overrides) and the quantization
//! options of `convert` and `quantize`. Errors are plain strings: clap reports them as usage
//! errors (exit code 2) naming the flag.

use crate::error::{Error, Result};
use crate::quantize::calibration::Calibration;
use crate::quantize::fit::{Budget, FitOptions};
use crate::quantize::gptq::{GptqOptions, Inputs};
use crate::quantize::policy::{can_hold_weights, Policy, TypeOverride};
use crate::quantize::{ConvertOptions, Split};
use crate::tokenizer::chat;
use clap::{Args, ValueEnum};
use llq_formats::gguf::split::SplitLimit;
use llq_kernels::QuantMode;
use llq_types::{FileType, GgmlType};
use std::path::PathBuf;

/// A file type by name, case-insensitive (`q4_k_m` = `Q4_K_M`).
pub fn file_type(name: &str) -> std::result::Result<FileType, String> {
    FileType::from_name(name)
        .ok_or_else(|| format!("unknown type {name:?}; valid types: {}", file_type_names()))
}

/// Every file type's name, for help texts and errors.
pub fn file_type_names() -> String {
    FileType::all()
        .map(FileType::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A tensor type that can hold weights, by name, case-insensitive.
pub fn tensor_type(name: &str) -> std::result::Result<GgmlType, String> {
    GgmlType::from_name(name)
        .filter(|&t| can_hold_weights(t))
        .ok_or_else(|| {
            let names: Vec<_> = GgmlType::all()
                .filter(|&t| can_hold_weights(t))
                .map(GgmlType::name)
                .collect();
            format!("unknown tensor type {name:?}; valid: {}", names.join(", "))
        })
}

/// `PATTERN=TYPE`, as llama-quantize's `--tensor-type`: tensors whose GGUF name contains a
/// match of the regex PATTERN get TYPE.
pub fn type_override(spec: &str) -> std::result::Result<TypeOverride, String> {
    let (pattern, ty) = spec
        .rsplit_once('=')
        .ok_or_else(|| format!("{spec:?}: expected PATTERN=TYPE"))?;
    let pattern = regex::Regex::new(pattern).map_err(|e| format!("{spec:?}: bad pattern: {e}"))?;
    Ok(TypeOverride {
        pattern,
        ty: tensor_type(ty)?,
    })
}

/// "8GiB", "512MiB", "8GB", "1.5G", "123456" (bytes) → bytes. G/M/K alone are binary units.
pub fn bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 8GiB, 512MB)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    Ok((x * mult).round() as u64)
}

/// A split file size as gguf-split reads it: a number and M (10^6 bytes) or G (10^9), or
/// plain bytes.
pub fn split_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('M' | 'm') => (&t[..t.len() - 1], 1e6),
        Some('G' | 'g') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok((x * mult) as u64),
        _ => Err(format!(
            "{s:?} is not a size: a number of bytes, or with M (10^6) or G (10^9), e.g. 4G"
        )),
    }
}

/// `KEY=VALUE` (split at the first `=`).
pub fn parse_pair(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?}: expected KEY=VALUE")),
    }
}

/// A count of at least 1 (chunks, …).
pub fn count(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?}: expected a whole number of at least 1")),
    }
}

/// How `--imatrix` steers the rounding.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    /// llama-quantize's rounding, byte for byte.
    Ggml,
    /// Same block layouts, each block rescaled so that its importance-weighted gain is 1.
    Unbiased,
    /// Same block layouts, each matrix rounded with GPTQ's error compensation.
    Gptq,
}

/// Where `--quant-mode gptq` takes each layer's calibration inputs from.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GptqInputs {
    /// The layers before it already quantized (GPTQ's choice; two passes per layer).
    Quantized,
    /// The reference model (one pass per layer).
    Reference,
}

/// `--chat-template`'s help, listing the built-in templates and where each comes from.
fn chat_template_help() -> String {
    let builtins: Vec<String> = chat::BUILTINS
        .iter()
        .map(|b| format!("{} (from {})", b.name, b.source))
        .collect();
    format!(
        "Chat template to write as tokenizer.chat_template, replacing the source's (Meta \
         folders have none; a Hugging Face folder's comes from its tokenizer_config.json): a \
         file of Jinja text, or a built-in one: {}",
        builtins.join("; ")
    )
}

/// Options shared by convert and quantize.
#[derive(Args, Debug)]
pub struct QuantArgs {
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
    /// Quantize every weight to the base type (no per-tensor mix rules).
    #[arg(long, conflicts_with = "fitting")]
    pure: bool,
    /// Override types of tensors whose name matches a regex: PATTERN=TYPE (repeatable).
    #[arg(long = "tensor-type", value_name = "PATTERN=TYPE", value_parser = type_override, conflicts_with = "fitting")]
    tensor_types: Vec<TypeOverride>,
    /// Type of output.weight.
    #[arg(long, value_name = "TYPE", value_parser = tensor_type)]
    output_tensor_type: Option<GgmlType>,
    /// Type of token_embd.weight.
    #[arg(long, value_name = "TYPE", value_parser = tensor_type)]
    token_embedding_type: Option<GgmlType>,
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
    /// How the weights are rounded: `ggml` (default) is llama-quantize's, byte for byte;
    /// `unbiased` keeps the block layouts (any GGUF reader loads the file) but rescales each
    /// block so that its importance-weighted gain is 1 instead of ggml's shrink, after refining
    /// Q4_0/Q5_0 levels (needs --imatrix); `gptq` keeps the block layouts and rounds each
    /// matrix with error compensation (GPTQ) measured over --calibration (needed), steered by
    /// --imatrix if given.
    #[arg(
        long,
        value_name = "MODE",
        value_enum,
        ignore_case = true,
        default_value = "ggml"
    )]
    quant_mode: Mode,
    #[arg(long, value_name = "FILE|NAME", help = chat_template_help())]
    chat_template: Option<String>,
    /// Write a split set, OUT-00001-of-0000N.gguf …, each file holding at most SIZE of tensor
    /// data (M = 10^6 bytes, G = 10^9, as gguf-split; a larger tensor gets a file of its own).
    #[arg(long, value_name = "SIZE", value_parser = split_size, conflicts_with_all = ["split_max_tensors", "fitting"])]
    split_max_size: Option<u64>,
    /// Write a split set with at most N tensors per file.
    #[arg(long, value_name = "N", value_parser = count, conflicts_with = "fitting")]
    split_max_tensors: Option<usize>,
    /// The best file no larger than SIZE (e.g. 3.5GiB, 4GB, 3500MB, bytes): every weight's type
    /// chosen to minimise the predicted loss, measured with --calibration (or --imatrix).
    #[arg(long, value_name = "SIZE", value_parser = bytes, group = "fitting")]
    fit: Option<u64>,
    /// As --fit, with a budget in bits per weight over the weight tensors.
    #[arg(long, value_name = "BITS", group = "fitting")]
    target_bpw: Option<f64>,
    /// As --fit, with the file size what SIZE of RAM leaves after the F16 KV cache at --ctx and
    /// the runtime's working memory.
    #[arg(long, value_name = "SIZE", value_parser = bytes, group = "fitting")]
    fit_ram: Option<u64>,
    /// Context the KV cache of --fit-ram holds.
    #[arg(long, default_value_t = 4096, requires = "fit_ram")]
    ctx: usize,
    /// Where --quant-mode gptq takes each layer's calibration inputs from.
    #[arg(
        long,
        value_name = "FROM",
        value_enum,
        ignore_case = true,
        default_value = "quantized"
    )]
    gptq_inputs: GptqInputs,
    /// Text the reference model runs over: to measure what quantizing each kind of tensor
    /// costs (KL divergence) for --fit, and the inputs' Hessians for --quant-mode gptq.
    #[arg(long, value_name = "TEXT")]
    calibration: Option<PathBuf>,
    /// Chunks of the calibration text.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = count, requires = "calibration")]
    calibration_chunks: usize,
    /// Tokens per calibration chunk.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 512,
        requires = "calibration"
    )]
    calibration_ctx: usize,
    /// Also write the per-type report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl QuantArgs {
    /// Whether a budget (--fit, --target-bpw, --fit-ram) chooses the types.
    pub fn fitting(&self) -> bool {
        self.budget().is_some()
    }

    /// The budget of --fit, --target-bpw or --fit-ram, if one was given.
    fn budget(&self) -> Option<Budget> {
        match (self.fit, self.target_bpw, self.fit_ram) {
            (Some(bytes), _, _) => Some(Budget::FileBytes(bytes)),
            (_, Some(bits), _) => Some(Budget::BitsPerWeight(bits)),
            (_, _, Some(bytes)) => Some(Budget::Ram {
                bytes,
                ctx: self.ctx,
            }),
            _ => None,
        }
    }

    /// The conversion these flags ask for: to `file_type`, or to a fitted mix (where a
    /// `file_type` is a usage error).
    pub fn options(
        &self,
        file_type: Option<FileType>,
        allow_requantize: bool,
    ) -> Result<ConvertOptions> {
        let calibration = self.calibration.clone().map(|text| Calibration {
            text,
            chunks: self.calibration_chunks,
            n_ctx: self.calibration_ctx,
        });
        let fit = self.budget().map(|budget| FitOptions {
            budget,
            calibration: calibration.clone(),
        });
        let file_type = match (file_type, &fit) {
            (Some(_), Some(_)) => {
                return Err(Error::Usage(
                    "--fit, --target-bpw and --fit-ram choose the types: give no --type".into(),
                ))
            }
            (None, Some(_)) => FileType::Q8_0,
            (Some(ft), None) => ft,
            (None, None) => {
                return Err(Error::Usage(
                    "give a type (--type / TYPE) or a budget (--fit, --target-bpw, --fit-ram)"
                        .into(),
                ))
            }
        };
        let quant_mode = match self.quant_mode {
            Mode::Ggml => QuantMode::Ggml,
            Mode::Unbiased if self.imatrix.is_none() => {
                return Err(Error::Usage(
                    "--quant-mode unbiased changes only importance-weighted rounding: \
                     it needs --imatrix"
                        .into(),
                ))
            }
            Mode::Unbiased => QuantMode::Unbiased,
            Mode::Gptq => QuantMode::Ggml,
        };
        let gptq =
            match (self.quant_mode, calibration) {
                (Mode::Gptq, None) => return Err(Error::Usage(
                    "--quant-mode gptq measures its Hessians on a text: give --calibration TEXT"
                        .into(),
                )),
                (Mode::Gptq, Some(calibration)) => Some(GptqOptions {
                    calibration,
                    inputs: match self.gptq_inputs {
                        GptqInputs::Quantized => Inputs::Quantized,
                        GptqInputs::Reference => Inputs::Reference,
                    },
                }),
                (_, Some(_)) if fit.is_none() => {
                    return Err(Error::Usage(
                        "--calibration is for --fit, --target-bpw, --fit-ram and --quant-mode gptq"
                            .into(),
                    ))
                }
                _ => None,
            };
        let policy = Policy {
            pure: self.pure,
            overrides: self.tensor_types.clone(),
            output_type: self.output_tensor_type,
            token_embedding_type: self.token_embedding_type,
            ..Policy::new(file_type)
        };
        Ok(ConvertOptions {
            overwrite: self.force,
            allow_nonfinite: self.allow_nonfinite,
            allow_requantize,
            progress: !self.quiet,
            imatrix: self.imatrix.clone(),
            quant_mode,
            chat_template: self
                .chat_template
                .as_deref()
                .map(chat::resolve)
                .transpose()?,
            split: match (self.split_max_size, self.split_max_tensors) {
                (Some(bytes), _) => Some(Split::Limit(SplitLimit::Bytes(bytes))),
                (None, Some(n)) => Some(Split::Limit(SplitLimit::Tensors(n))),
                (None, None) => None,
            },
            fit,
            gptq,
            ..ConvertOptions::new(policy)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes_parse_as_gguf_split() {
        assert_eq!(split_size("4G"), Ok(4_000_000_000));
        assert_eq!(split_size("1.5G"), Ok(1_500_000_000));
        assert_eq!(split_size("300M"), Ok(300_000_000));
        assert_eq!(split_size("1000"), Ok(1000));
        assert!(split_size("0G").is_err());
        assert!(split_size("4T").is_err());
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(bytes("8GiB"), Ok(8 << 30));
        assert_eq!(bytes("1.5G"), Ok(3 << 29));
        assert_eq!(bytes("4GB"), Ok(4_000_000_000));
        assert_eq!(bytes("3500MB"), Ok(3_500_000_000));
        assert_eq!(bytes("123456"), Ok(123_456));
        assert!(bytes("8 parsecs").is_err());
        assert!(bytes("lots").is_err());
    }

    #[test]
    fn names_parse_case_insensitively() {
        assert_eq!(file_type("q4_k_m"), Ok(FileType::Q4_K_M));
        assert!(file_type("q4_k_x").unwrap_err().contains("Q4_K_M"));
        assert_eq!(tensor_type("q8_0"), Ok(GgmlType::Q8_0));
        assert!(tensor_type("q8_k").is_err(), "activation-only");
        let o = type_override("attn_v=Q6_K").unwrap();
        assert_eq!(o.ty, GgmlType::Q6_K);
        assert!(o.pattern.is_match("blk.3.attn_v.weight"));
        assert!(type_override("attn_v").is_err());
    }
}
