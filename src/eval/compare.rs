//! A reference model against a quantized one over the same text, with the
//! statistics llama.cpp's `llama-perplexity --kl-divergence` reports. Both models run chunk by
//! chunk in one process (llama.cpp's chunking, see [`super::perplexity`]); only one chunk of
//! logits per model is alive at a time, so memory does not grow with the text (apart from one
//! f64 per scored token, kept for the KLD percentiles).
//!
//! Per scored token, in f64 from log-softmax of each model's logits:
//! KLD = Σ_v p_ref(v)·(log p_ref(v) − log p_q(v)); "same top" = both argmaxes equal;
//! Δp = p_q(correct) − p_ref(correct). The PPL ratio is exp(mean nll_q − mean nll_ref), its
//! uncertainty from the variances of both mean NLLs and their covariance.

use super::perplexity::chunk_count;
use super::reference::{check_pair, load_reference};
use super::text::chunked_tokens;
use crate::error::Result;
use crate::progress;
use crate::runtime::forward::{KvCache, Logits, Session};
use crate::runtime::model::Model;
use crate::tokenizer::Tokenizer;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Running sums over scored tokens, and every token's KLD for percentiles.
#[derive(Default)]
pub struct CompareAccumulator {
    n: usize,
    sum_nll_ref: f64,
    sum_nll_ref2: f64,
    sum_nll_q: f64,
    sum_nll_q2: f64,
    sum_nll_cross: f64,
    sum_kld: f64,
    sum_kld2: f64,
    n_same_top: usize,
    sum_dp: f64,
    sum_dp2: f64,
    sum_dp4: f64,
    klds: Vec<f64>,
}

/// log-softmax of one row of logits, in f64; also its argmax.
fn log_softmax(logits: &[f32], out: &mut [f64]) -> usize {
    let (mut arg, mut max) = (0usize, f32::NEG_INFINITY);
    for (i, &l) in logits.iter().enumerate() {
        if l > max {
            max = l;
            arg = i;
        }
    }
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let log_sum = sum.ln();
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = f64::from(l - max) - log_sum;
    }
    arg
}

impl CompareAccumulator {
    /// Add one scored position: both models' logits over the vocabulary and the correct token.
    pub fn add(
        &mut self,
        ref_logits: &[f32],
        q_logits: &[f32],
        target: u32,
        scratch: &mut Scratch,
    ) {
        let n_vocab = ref_logits.len();
        scratch.a.resize(n_vocab, 0.0);
        scratch.b.resize(n_vocab, 0.0);
        let top_ref = log_softmax(ref_logits, &mut scratch.a);
        let top_q = log_softmax(q_logits, &mut scratch.b);
        let kld: f64 = scratch
            .a
            .iter()
            .zip(&scratch.b)
            .map(|(&lr, &lq)| lr.exp() * (lr - lq))
            .sum();
        let t = target as usize;
        let (nll_ref, nll_q) = (-scratch.a[t], -scratch.b[t]);
        let dp = scratch.b[t].exp() - scratch.a[t].exp();
        self.n += 1;
        self.sum_nll_ref += nll_ref;
        self.sum_nll_ref2 += nll_ref * nll_ref;
        self.sum_nll_q += nll_q;
        self.sum_nll_q2 += nll_q * nll_q;
        self.sum_nll_cross += nll_ref * nll_q;
        self.sum_kld += kld;
        self.sum_kld2 += kld * kld;
        self.n_same_top += usize::from(top_ref == top_q);
        self.sum_dp += dp;
        self.sum_dp2 += dp * dp;
        self.sum_dp4 += dp * dp * dp * dp;
        self.klds.push(kld);
    }

    /// Running mean KLD (progress display).
    pub fn mean_kld(&self) -> f64 {
        self.sum_kld / self.n.max(1) as f64
    }

    pub fn finish(mut self, n_ctx: usize, n_chunks: usize) -> CompareResult {
        let n = self.n as f64;
        let m1 = (n - 1.0).max(1.0);
        let mean_r = self.sum_nll_ref / n;
        let mean_q = self.sum_nll_q / n;
        let var_r = (self.sum_nll_ref2 / n - mean_r * mean_r).max(0.0) / m1;
        let var_q = (self.sum_nll_q2 / n - mean_q * mean_q).max(0.0) / m1;
        let cov = (self.sum_nll_cross / n - mean_r * mean_q) / m1;
        let ln_ratio = mean_q - mean_r;
        let ln_ratio_err = (var_r + var_q - 2.0 * cov).max(0.0).sqrt();
        let ppl_ratio = ln_ratio.exp();
        let kld_mean = self.sum_kld / n;
        let kld_err = ((self.sum_kld2 / n - kld_mean * kld_mean).max(0.0) / m1).sqrt();
        let top1 = self.n_same_top as f64 / n;
        let top1_err = (top1 * (1.0 - top1) / m1).sqrt();
        let ms_dp = self.sum_dp2 / n;
        let rms_dp = ms_dp.sqrt();
        let var_dp2 = (self.sum_dp4 / n - ms_dp * ms_dp).max(0.0) / m1;
        let rms_dp_err = if rms_dp > 0.0 {
            var_dp2.sqrt() / (2.0 * rms_dp)
        } else {
            0.0
        };
        self.klds.sort_by(f64::total_cmp);
        let pct = |f: f64| percentile(&self.klds, f);
        CompareResult {
            n_ctx,
            chunks: n_chunks,
            tokens: self.n,
            ppl_ref: mean_r.exp(),
            ppl_ref_err: var_r.sqrt() * mean_r.exp(),
            ppl_quant: mean_q.exp(),
            ppl_quant_err: var_q.sqrt() * mean_q.exp(),
            nll_correlation: if var_r > 0.0 && var_q > 0.0 {
                cov / (var_r.sqrt() * var_q.sqrt())
            } else {
                1.0
            },
            ln_ppl_ratio: ln_ratio,
            ln_ppl_ratio_err: ln_ratio_err,
            ppl_ratio,
            ppl_ratio_err: ppl_ratio * ln_ratio_err,
            kld_mean,
            kld_mean_err: kld_err,
            kld_median: pct(0.5),
            kld_p90: pct(0.9),
            kld_p99: pct(0.99),
            kld_p999: pct(0.999),
            kld_max: self.klds.last().copied().unwrap_or(0.0),
            kld_min: self.klds.first().copied().unwrap_or(0.0),
            top1,
            top1_err,
            mean_dp: self.sum_dp / n,
            rms_dp,
            rms_dp_err,
        }
    }
}

/// Two reusable rows of f64 log-probabilities.
#[derive(Default)]
pub struct Scratch {
    a: Vec<f64>,
    b: Vec<f64>,
}

/// Linear interpolation between the sorted values around rank `f·(n−1)`.
pub fn percentile(sorted: &[f64], f: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let x = f * (sorted.len() - 1) as f64;
    let lo = x.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let w = x - lo as f64;
    sorted[lo] * (1.0 - w) + sorted[hi] * w
}

/// Everything `llq compare` reports (also its `--json`).
#[derive(Clone, Debug, Serialize)]
pub struct CompareResult {
    pub n_ctx: usize,
    pub chunks: usize,
    /// Tokens scored.
    pub tokens: usize,
    pub ppl_ref: f64,
    pub ppl_ref_err: f64,
    pub ppl_quant: f64,
    pub ppl_quant_err: f64,
    /// Correlation of the two models' per-token NLLs.
    pub nll_correlation: f64,
    pub ln_ppl_ratio: f64,
    pub ln_ppl_ratio_err: f64,
    pub ppl_ratio: f64,
    pub ppl_ratio_err: f64,
    pub kld_mean: f64,
    pub kld_mean_err: f64,
    pub kld_median: f64,
    pub kld_p90: f64,
    pub kld_p99: f64,
    pub kld_p999: f64,
    pub kld_max: f64,
    pub kld_min: f64,
    /// Fraction of tokens where both models' most likely token is the same.
    pub top1: f64,
    pub top1_err: f64,
    pub mean_dp: f64,
    /// RMS over tokens of p_quant(correct) − p_ref(correct).
    pub rms_dp: f64,
    pub rms_dp_err: f64,
}

/// Run both models over the same chunks; `on_chunk(i, running mean KLD)` reports progress.
pub fn compare(
    reference: &Session,
    quant: &Session,
    tokens: &[u32],
    n_ctx: usize,
    max_chunks: Option<usize>,
    bos: u32,
    mut on_chunk: impl FnMut(usize, f64),
) -> CompareResult {
    let n_chunks = chunk_count(tokens.len(), n_ctx, max_chunks);
    let mut cache_ref = KvCache::new(reference.model, n_ctx);
    let mut cache_q = KvCache::new(quant.model, n_ctx);
    let n_vocab = reference.model.hp.n_vocab;
    let first = n_ctx / 2;
    let mut acc = CompareAccumulator::default();
    let mut scratch = Scratch::default();
    for c in 0..n_chunks {
        let chunk = &tokens[c * n_ctx..(c + 1) * n_ctx];
        let mut batch = chunk.to_vec();
        batch[0] = bos;
        cache_ref.clear();
        let lr = reference.forward(&batch, &mut cache_ref, Logits::From(first));
        cache_q.clear();
        let lq = quant.forward(&batch, &mut cache_q, Logits::From(first));
        for j in first..n_ctx - 1 {
            let row = (j - first) * n_vocab..(j - first + 1) * n_vocab;
            acc.add(&lr[row.clone()], &lq[row], chunk[j + 1], &mut scratch);
        }
        on_chunk(c, acc.mean_kld());
    }
    acc.finish(n_ctx, n_chunks)
}

/// What to compare over which text.
pub struct CompareSpec<'a> {
    /// Reference: an F32/F16/BF16 GGUF, or a checkpoint folder (run as F32).
    pub reference: &'a Path,
    /// The quantized GGUFs, each compared with the reference.
    pub quants: &'a [PathBuf],
    pub text: &'a Path,
    pub n_ctx: usize,
    pub max_chunks: Option<usize>,
    pub progress: bool,
}

/// Load the reference once, tokenize the text with its tokenizer, then for each quantized
/// file check that it belongs with the reference and [`compare`] them over the text.
pub fn compare_files(spec: &CompareSpec) -> Result<Vec<CompareResult>> {
    let quants = spec
        .quants
        .iter()
        .map(|q| Model::load(q))
        .collect::<Result<Vec<_>>>()?;
    let r = load_reference(spec.reference)?;
    for (q, path) in quants.iter().zip(spec.quants) {
        check_pair(&r, q, spec.reference, path)?;
    }
    let tok = Tokenizer::from_model(&r)?;
    let tokens = chunked_tokens(&tok, spec.text, spec.n_ctx, "a comparison")?;
    Ok(quants
        .iter()
        .map(|q| {
            compare_models(
                &r,
                q,
                &tokens,
                tok.bos(),
                spec.n_ctx,
                spec.max_chunks,
                spec.progress,
            )
        })
        .collect())
}

/// [`compare`] two loaded models, with a progress bar over chunks if asked.
pub fn compare_models(
    r: &Model,
    q: &Model,
    tokens: &[u32],
    bos: u32,
    n_ctx: usize,
    max_chunks: Option<usize>,
    show_progress: bool,
) -> CompareResult {
    let n = chunk_count(tokens.len(), n_ctx, max_chunks);
    let bar = show_progress.then(|| progress::count_bar(n as u64, "chunks"));
    let (sr, sq) = (Session::new(r), Session::new(q));
    let res = compare(&sr, &sq, tokens, n_ctx, max_chunks, bos, |_, kld| {
        if let Some(bar) = &bar {
            bar.set_message(format!("KLD {kld:.6}"));
            bar.inc(1);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    res
}

/// Pass/fail thresholds of `llq compare`.
#[derive(Clone, Debug, Default)]
pub struct Gates {
    pub max_kld: Option<f64>,
    pub max_ppl_ratio: Option<f64>,
    /// A fraction (0.97) or a percentage (97).
    pub min_top1: Option<f64>,
}

impl Gates {
    /// The first violated gate, as a one-line reason.
    pub fn check(&self, r: &CompareResult) -> Option<String> {
        if let Some(x) = self.max_kld {
            if r.kld_mean.is_nan() || r.kld_mean > x {
                return Some(format!("mean KLD {:.6} exceeds --max-kld {x}", r.kld_mean));
            }
        }
        if let Some(x) = self.max_ppl_ratio {
            if r.ppl_ratio.is_nan() || r.ppl_ratio > x {
                return Some(format!(
                    "PPL ratio {:.6} exceeds --max-ppl-ratio {x}",
                    r.ppl_ratio
                ));
            }
        }
        if let Some(x) = self.min_top1 {
            let want = if x > 1.0 { x / 100.0 } else { x };
            if r.top1.is_nan() || r.top1 < want {
                return Some(format!(
                    "top-1 agreement {:.4} % is below --min-top1 {x}",
                    100.0 * r.top1
                ));
            }
        }
        None
    }
}

/// The stdout table.
pub fn render_table(r: &CompareResult) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<22} {v}\n"));
    line(
        "tokens scored",
        format!("{} ({} chunks of {})", r.tokens, r.chunks, r.n_ctx),
    );
    line(
        "PPL(ref)",
        format!("{:.6} ± {:.6}", r.ppl_ref, r.ppl_ref_err),
    );
    line(
        "PPL(quant)",
        format!("{:.6} ± {:.6}", r.ppl_quant, r.ppl_quant_err),
    );
    line("Cor(ln PPL)", format!("{:.2} %", 100.0 * r.nll_correlation));
    line(
        "ln(PPL(q)/PPL(ref))",
        format!("{:.6} ± {:.6}", r.ln_ppl_ratio, r.ln_ppl_ratio_err),
    );
    line(
        "PPL(q)/PPL(ref)",
        format!("{:.6} ± {:.6}", r.ppl_ratio, r.ppl_ratio_err),
    );
    line(
        "KLD mean",
        format!("{:.6} ± {:.6}", r.kld_mean, r.kld_mean_err),
    );
    line("KLD median", format!("{:.6}", r.kld_median));
    line("KLD p90", format!("{:.6}", r.kld_p90));
    line("KLD p99", format!("{:.6}", r.kld_p99));
    line("KLD p99.9", format!("{:.6}", r.kld_p999));
    line("KLD max", format!("{:.6}", r.kld_max));
    line(
        "same top p",
        format!("{:.3} ± {:.3} %", 100.0 * r.top1, 100.0 * r.top1_err),
    );
    line("mean Δp", format!("{:.4} %", 100.0 * r.mean_dp));
    line(
        "RMS Δp",
        format!("{:.4} ± {:.4} %", 100.0 * r.rms_dp, 100.0 * r.rms_dp_err),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_between_ranks() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.0);
        assert_eq!(percentile(&v, 0.99), 3.96);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn identical_logits_give_zero_divergence() {
        let mut acc = CompareAccumulator::default();
        let mut scratch = Scratch::default();
        let a = [0.5f32, -1.0, 2.0, 0.0];
        let b = [2.0f32, 0.5, -1.0, 0.0];
        acc.add(&a, &a, 2, &mut scratch);
        acc.add(&b, &b, 1, &mut scratch);
        let r = acc.finish(4, 1);
        assert_eq!(
            (r.kld_mean, r.kld_max, r.top1, r.rms_dp),
            (0.0, 0.0, 1.0, 0.0)
        );
        assert_eq!(r.ppl_ratio, 1.0);
    }

    #[test]
    fn kld_of_two_distributions() {
        // p = softmax([0, ln 3]) = (1/4, 3/4); q = (1/2, 1/2).
        let mut acc = CompareAccumulator::default();
        acc.add(&[0.0, 3f32.ln()], &[0.0, 0.0], 1, &mut Scratch::default());
        let r = acc.finish(4, 1);
        let want = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        assert!((r.kld_mean - want).abs() < 1e-7, "{} {want}", r.kld_mean);
        assert!((r.ppl_ratio - 0.75 / 0.5).abs() < 1e-6);
        // argmax 1 against the first of two equal values (0).
        assert_eq!(r.top1, 0.0);
        let gates = Gates {
            max_kld: Some(want / 2.0),
            ..Gates::default()
        };
        assert!(gates.check(&r).unwrap().contains("--max-kld"));
        assert!(Gates::default().check(&r).is_none());
    }
}
