//! `--fit SIZE`: the type of every tensor chosen to minimise the predicted loss of the whole
//! model with the file no larger than SIZE.
//!
//! The predicted loss of tensor t at type q is `s_g · proxy(t, q)`: the proxy
//! ([`proxy`]) is the expected squared perturbation of the tensor's output per token, from its
//! quantization error weighted by its inputs' mean squares; `s_g` turns that into KL
//! divergence of the model's output for the tensor's group g (one group per tensor kind:
//! every layer's attn_v together, …), measured with `--calibration` ([`calibrate`]) as the
//! KLD from quantizing the group to Q4_0 divided by the group's Q4_0 proxy. The choice itself
//! is a knapsack over the tensors ([`allocate`]).
//!
//! The inputs' mean squares come from `--imatrix`, else from the same calibration pass. Without
//! a calibration text the pass runs on seeded random tokens of the vocabulary (data-free): on
//! the fixture that chose types as well as real text did, while the proxy alone (every `s_g` 1)
//! made files worse than llama-quantize's mixes, so there is no uncalibrated mode.

mod allocate;
mod calibrate;
mod proxy;

use super::calibration::Calibration;
use super::policy::TensorTarget;
use crate::checkpoint::{Source, SourceTensor};
use crate::error::{Error, Result};
use crate::eval::reference::load_reference;
use crate::progress;
use crate::runtime::sampler::SplitMix64;
use crate::tokenizer::Tokenizer;
use llq_formats::gguf::{layout, TensorSpec, Value};
use llq_kernels::QuantMode;
use llq_types::{FileType, GgmlType};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// What the output must fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// The whole file (header, metadata, padding, tensors) at most this many bytes.
    FileBytes(u64),
    /// The weight tensors' data at most this many bits per weight.
    BitsPerWeight(f64),
    /// What fits in this much RAM at a context of `ctx` tokens (see [`ram_budget`]).
    Ram { bytes: u64, ctx: usize },
}

/// Everything `--fit` needs besides the checkpoint.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub budget: Budget,
    pub calibration: Option<Calibration>,
}

/// The types every weight may get, where its rows fit the blocks.
const CANDIDATES: [GgmlType; 13] = [
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::IQ4_XS,
    GgmlType::Q4_0,
    GgmlType::IQ4_NL,
    GgmlType::Q4_1,
    GgmlType::Q4_K,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_0,
    GgmlType::F16,
];

/// The type each group's sensitivity is measured at: every LLaMA row is a multiple of 32.
const PROBE: GgmlType = GgmlType::Q4_0;

/// The data-free calibration without a text: this many chunks of this many random tokens.
const RANDOM_CHUNKS: usize = 8;
const RANDOM_CTX: usize = 512;

/// One tensor's line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct FitRow {
    pub name: String,
    #[serde(serialize_with = "type_name")]
    pub ty: GgmlType,
    pub bytes: u64,
    /// The predicted loss at the chosen type (KLD units with --calibration).
    pub predicted_loss: f64,
}

fn type_name<S: serde::Serializer>(ty: &GgmlType, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(ty.name())
}

/// What `--fit` chose and why.
#[derive(Clone, Debug, Serialize)]
pub struct FitReport {
    pub budget: String,
    /// Where the inputs' statistics and the group scales came from.
    pub method: String,
    pub file_bytes: u64,
    pub bits_per_weight: f64,
    pub predicted_loss: f64,
    #[serde(serialize_with = "file_type_name")]
    pub file_type: FileType,
    pub measure_seconds: f64,
    /// Per group: the measured KL divergence at the probe type and the scale derived.
    pub groups: BTreeMap<String, (f64, f64)>,
    pub tensors: Vec<FitRow>,
}

fn file_type_name<S: serde::Serializer>(
    ft: &FileType,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(ft.name())
}

/// The group of a tensor for sensitivity: its kind, all layers together.
fn group_of(name: &str) -> &str {
    match name.strip_prefix("blk.") {
        Some(rest) => rest.split_once('.').map_or(rest, |(_, kind)| kind),
        None => name,
    }
}

/// Choose every tensor's type for `opts.budget`. `kv` is the output's metadata (for the exact
/// header size), `importance` each tensor's imatrix entry (steering the rounding, as in the
/// conversion itself). Returns the tensors in source order and the report.
pub fn fit(
    source: &Source,
    kv: &[(String, Value)],
    importance: &[Option<Vec<f32>>],
    mode: QuantMode,
    opts: &FitOptions,
    show_progress: bool,
) -> Result<(Vec<TensorTarget>, FitReport)> {
    let started = Instant::now();
    let weights: Vec<usize> = (0..source.tensors.len())
        .filter(|&i| source.tensors[i].shape.len() == 2)
        .collect();
    let candidates: Vec<Vec<GgmlType>> = weights
        .iter()
        .map(|&i| {
            let row = source.tensors[i].shape[1];
            CANDIDATES
                .iter()
                .copied()
                .filter(|t| row.is_multiple_of(t.block_size()))
                .collect()
        })
        .collect();
    let imatrix_given = importance.iter().any(Option::is_some);
    let importance_of = |name: &str| -> Option<Vec<f32>> {
        let i = source.tensors.iter().position(|t| t.name == name)?;
        importance[i].clone()
    };

    // The reference over the calibration chunks: the inputs' statistics and its logits.
    let mut model = load_reference(&source.path)?;
    let tok = Tokenizer::from_model(&model)?;
    let (chunks, source_text) = match &opts.calibration {
        Some(cal) => (cal.chunks(&tok)?, cal.text.display().to_string()),
        None => {
            let n_ctx = RANDOM_CTX.min(source.hparams.context_length);
            (
                random_chunks(&tok, RANDOM_CHUNKS, n_ctx),
                "random tokens of the vocabulary".into(),
            )
        }
    };
    let (n_chunks, n_ctx) = (chunks.len(), chunks[0].len());
    let groups: std::collections::BTreeSet<&str> = weights
        .iter()
        .map(|&i| group_of(&source.tensors[i].name))
        .collect();
    let bar = show_progress
        .then(|| progress::count_bar((n_chunks * (1 + groups.len())) as u64, "chunk passes"));
    let tick = |n: usize| {
        if let Some(b) = &bar {
            b.inc(n as u64)
        }
    };
    let reference =
        crate::runtime::run_command(|| calibrate::reference_pass(&model, chunks, || tick(1)));
    let column_weights: Vec<Vec<f32>> = weights
        .iter()
        .map(|&i| {
            let t = &source.tensors[i];
            if t.name == "token_embd.weight" {
                return vec![1.0; t.shape[1]];
            }
            importance[i].clone().unwrap_or_else(|| {
                reference.stats.get(&t.name).map_or_else(
                    || vec![1.0; t.shape[1]],
                    |s| s.mean().iter().map(|&m| m as f32).collect(),
                )
            })
        })
        .collect();
    let method = format!(
        "inputs' mean squares from {}; each tensor kind's scale measured as the KLD of \
         quantizing it to {PROBE} over {n_chunks} chunks of {n_ctx} tokens of {source_text}",
        if imatrix_given {
            "the imatrix"
        } else {
            "the same chunks"
        },
    );

    // The proxy of every tensor at every candidate type.
    let proxies: Vec<Vec<f64>> = weights
        .par_iter()
        .zip(&candidates)
        .zip(&column_weights)
        .map(|((&i, types), cw)| {
            let t = &source.tensors[i];
            proxy_table(t, types, cw, importance[i].as_deref(), mode)
        })
        .collect();

    // Each group's scale: its measured KLD per unit of proxy at the probe type.
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (k, &i) in weights.iter().enumerate() {
        members
            .entry(group_of(&source.tensors[i].name))
            .or_default()
            .push(k);
    }
    let mut groups: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (group, ks) in members {
        let names: Vec<&str> = ks
            .iter()
            .map(|&k| source.tensors[weights[k]].name.as_str())
            .collect();
        let kld = crate::runtime::run_command(|| {
            calibrate::group_kld(&mut model, &reference, &names, PROBE, &importance_of, mode)
        })
        .map_err(|m| Error::file(&source.path, m))?;
        tick(n_chunks);
        let probe_proxy: f64 = ks
            .iter()
            .map(|&k| {
                let at = candidates[k]
                    .iter()
                    .position(|&t| t == PROBE)
                    .expect("Q4_0 fits every row");
                proxies[k][at]
            })
            .sum();
        let scale = if probe_proxy > 0.0 {
            kld / probe_proxy
        } else {
            0.0
        };
        groups.insert(group.to_string(), (kld, scale));
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let scale_of = |name: &str| groups.get(group_of(name)).map_or(1.0, |g| g.1);

    // Bytes: the exact header of the output, each tensor's data padded to the alignment.
    let specs: Vec<TensorSpec> = source
        .tensors
        .iter()
        .map(|t| TensorSpec {
            name: t.name.clone(),
            dims: t.shape.iter().rev().map(|&d| d as u64).collect(),
            ty: GgmlType::F32,
        })
        .collect();
    let header = layout(kv, &specs)
        .map_err(|e| Error::file(&source.path, e.to_string()))?
        .data_offset;
    let pad = |b: u64| b.div_ceil(32) * 32;
    let tensor_bytes = |t: &SourceTensor, ty: GgmlType| -> u64 {
        let rows: usize = t.shape.iter().rev().skip(1).product();
        (ty.row_bytes(*t.shape.last().unwrap_or(&1)).expect("fits") * rows) as u64
    };
    let fixed: u64 = source
        .tensors
        .iter()
        .filter(|t| t.shape.len() != 2)
        .map(|t| pad(tensor_bytes(t, GgmlType::F32)))
        .sum();
    let n_weights: u64 = weights
        .iter()
        .map(|&i| source.tensors[i].shape.iter().product::<usize>() as u64)
        .sum();
    let file_budget = match opts.budget {
        Budget::Ram { bytes, ctx } => {
            Budget::FileBytes(ram_budget(&source.hparams, bytes, ctx).ok_or_else(|| {
                Error::Usage(format!(
                    "{} of RAM does not even hold the KV cache at --ctx {ctx} and the runtime's \
                     working memory",
                    bytes
                ))
            })?)
        }
        other => other,
    };
    let (budget, padded) = match file_budget {
        Budget::FileBytes(size) => (size.checked_sub(header + fixed), true),
        Budget::BitsPerWeight(b) => (Some((b * n_weights as f64 / 8.0) as u64), false),
        Budget::Ram { .. } => unreachable!("resolved to a file size above"),
    };
    let choices: Vec<allocate::Choices> = weights
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let t = &source.tensors[i];
            allocate::Choices {
                options: candidates[k]
                    .iter()
                    .zip(&proxies[k])
                    .map(|(&ty, &p)| {
                        let b = tensor_bytes(t, ty);
                        (if padded { pad(b) } else { b }, p * scale_of(&t.name))
                    })
                    .collect(),
            }
        })
        .collect();
    let smallest: u64 = choices
        .iter()
        .map(|c| c.options.iter().map(|o| o.0).min().unwrap_or(0))
        .sum();
    let chosen = budget
        .and_then(|b| allocate::allocate(&choices, b))
        .ok_or_else(|| {
            let least = match file_budget {
                Budget::BitsPerWeight(_) => format!("{:.3} bits per weight", 8.0 * smallest as f64 / n_weights as f64),
                _ => format!("{} bytes", header + fixed + smallest),
            };
            Error::Usage(format!(
                "{}: no file fits {}: the smallest, with every tensor at its smallest type, takes {least}",
                source.path.display(),
                budget_text(file_budget)
            ))
        })?;

    // The tensors in source order: 1-D ones stay F32.
    let mut pick: BTreeMap<usize, GgmlType> = BTreeMap::new();
    let mut rows = Vec::new();
    for ((k, &i), c) in weights.iter().enumerate().zip(&chosen) {
        let ty = candidates[k][*c];
        pick.insert(i, ty);
        let t = &source.tensors[i];
        rows.push(FitRow {
            name: t.name.clone(),
            ty,
            bytes: tensor_bytes(t, ty),
            predicted_loss: choices[k].options[*c].1,
        });
    }
    let targets: Vec<TensorTarget> = source
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| TensorTarget {
            name: t.name.clone(),
            shape: t.shape.clone(),
            ty: pick.get(&i).copied().unwrap_or(GgmlType::F32),
            fallback: None,
        })
        .collect();
    let weight_bytes: u64 = rows.iter().map(|r| r.bytes).sum();
    let file_bytes = header + fixed + rows.iter().map(|r| pad(r.bytes)).sum::<u64>();
    let report = FitReport {
        budget: budget_text(file_budget),
        method,
        file_bytes,
        bits_per_weight: 8.0 * weight_bytes as f64 / n_weights as f64,
        predicted_loss: rows.iter().map(|r| r.predicted_loss).sum(),
        file_type: closest_file_type(&rows),
        measure_seconds: started.elapsed().as_secs_f64(),
        groups,
        tensors: rows,
    };
    Ok((targets, report))
}

/// Chunks of seeded random tokens (normal ones of the vocabulary, BOS first): a data-free
/// calibration when no text is given. On the fixture it chose types as well as real text did.
fn random_chunks(tok: &Tokenizer, n_chunks: usize, n_ctx: usize) -> Vec<Vec<u32>> {
    let normal: Vec<u32> = (0..tok.n_vocab() as u32)
        .filter(|&i| tok.token_type(i) == Some(llq_types::TokenType::Normal))
        .collect();
    let mut rng = SplitMix64(0x05ee_df17);
    (0..n_chunks)
        .map(|_| {
            std::iter::once(tok.bos())
                .chain((1..n_ctx).map(|_| normal[(rng.next_u64() % normal.len() as u64) as usize]))
                .collect()
        })
        .collect()
}

fn budget_text(b: Budget) -> String {
    match b {
        Budget::FileBytes(n) => format!("{n} bytes"),
        Budget::BitsPerWeight(x) => format!("{x} bits per weight"),
        Budget::Ram { bytes, ctx } => format!("{bytes} bytes of RAM at context {ctx}"),
    }
}

/// The proxy of `types` for one tensor, on its sampled rows.
fn proxy_table(
    t: &SourceTensor,
    types: &[GgmlType],
    column_weights: &[f32],
    importance: Option<&[f32]>,
    mode: QuantMode,
) -> Vec<f64> {
    let (n_rows, row_len) = (t.shape[0], t.shape[1]);
    let picked = proxy::sample(n_rows);
    let mut rows = vec![0f32; picked.len() * row_len];
    for (&r, out) in picked.iter().zip(rows.chunks_exact_mut(row_len)) {
        t.reader.read_rows(r, out);
    }
    let output = if t.name == "token_embd.weight" {
        proxy::Output::Lookup
    } else {
        proxy::Output::Matmul
    };
    let sample = proxy::Sample {
        rows: &rows,
        row_len,
        n_rows,
        output,
    };
    proxy::proxy_losses(&sample, column_weights, importance, mode, types)
}

/// The llama.cpp file type closest to a fitted mix: the one whose base type holds the most
/// weights (the `_M` mix for a K-quant).
fn closest_file_type(rows: &[FitRow]) -> FileType {
    let mut by_type: BTreeMap<GgmlType, u64> = BTreeMap::new();
    for r in rows {
        *by_type.entry(r.ty).or_default() += r.bytes;
    }
    let main = by_type
        .into_iter()
        .max_by_key(|&(_, b)| b)
        .map_or(GgmlType::F16, |(t, _)| t);
    let name = match main {
        GgmlType::Q3_K => "Q3_K_M",
        GgmlType::Q4_K => "Q4_K_M",
        GgmlType::Q5_K => "Q5_K_M",
        other => other.name(),
    };
    FileType::from_name(name).unwrap_or(FileType::F16)
}

/// The file budget `--fit-ram RAM --ctx N` leaves: RAM minus the F16 KV cache at N tokens and
/// the runtime's working memory (the logits and activations of a 512-token batch, and 16 MiB
/// for the process itself). `None` when that is nothing.
pub fn ram_budget(hp: &llq_formats::params::Hyperparams, ram: u64, ctx: usize) -> Option<u64> {
    let kv = (2 * hp.n_layer * ctx * hp.n_head_kv * hp.head_dim() * 2) as u64;
    let batch = 512u64;
    let working =
        batch * 4 * (hp.n_vocab as u64 + 3 * hp.n_ff as u64 + 4 * hp.n_embd as u64) + (16 << 20);
    ram.checked_sub(kv + working)
}
