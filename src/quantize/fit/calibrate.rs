//! The measurement pass of `--calibration`: the reference model (F32) runs over a few chunks of
//! text once, giving every matrix's input statistics and the reference's logits; then, group
//! by group, the group's tensors are quantized to a probe type in place and the KL divergence
//! from the reference is measured over the same chunks. Chunks as llama.cpp's perplexity: each
//! from an empty cache, BOS first, the second half scored.

use crate::eval::compare::{CompareAccumulator, Scratch};
use crate::eval::imatrix::{Collector, ColumnStats};
use crate::runtime::forward::{KvCache, Logits, Session};
use crate::runtime::model::Model;
use llq_kernels::QuantMode;
use llq_types::GgmlType;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The reference's outputs over the calibration chunks.
pub struct Reference {
    /// Per weight (GGUF name): its inputs' squared sums.
    pub stats: BTreeMap<String, ColumnStats>,
    /// Per chunk: the logits of the scored positions.
    logits: Vec<Vec<f32>>,
    chunks: Vec<Vec<u32>>,
}

/// Run the reference over `chunks` (each `n_ctx` tokens, BOS first), collecting statistics and
/// the scored logits; `on_chunk` reports progress.
pub fn reference_pass(
    model: &Model,
    chunks: Vec<Vec<u32>>,
    mut on_chunk: impl FnMut(),
) -> Reference {
    let collector = Collector::new(true);
    let mut logits = Vec::with_capacity(chunks.len());
    {
        let session = Session::with_observer(model, &collector);
        let n_ctx = chunks[0].len();
        let mut cache = KvCache::new(model, n_ctx);
        for chunk in &chunks {
            cache.clear();
            logits.push(session.forward(chunk, &mut cache, Logits::From(n_ctx / 2)));
            on_chunk();
        }
    }
    Reference {
        stats: collector.into_stats(),
        logits,
        chunks,
    }
}

impl Reference {
    /// Mean KL divergence of `model` from the reference over the calibration chunks.
    pub fn kld(&self, model: &Model) -> f64 {
        let session = Session::new(model);
        let n_ctx = self.chunks[0].len();
        let first = n_ctx / 2;
        let n_vocab = model.hp.n_vocab;
        let mut cache = KvCache::new(model, n_ctx);
        let mut acc = CompareAccumulator::default();
        let mut scratch = Scratch::default();
        for (chunk, reference) in self.chunks.iter().zip(&self.logits) {
            cache.clear();
            let logits = session.forward(chunk, &mut cache, Logits::From(first));
            for j in first..n_ctx - 1 {
                let row = (j - first) * n_vocab..(j - first + 1) * n_vocab;
                acc.add(
                    &reference[row.clone()],
                    &logits[row],
                    chunk[j + 1],
                    &mut scratch,
                );
            }
        }
        acc.mean_kld()
    }
}

/// The KL divergence from the reference with the tensors `names` quantized to `probe` (each
/// rounded as the conversion would, `importance` by name), measured in place and undone.
pub fn group_kld(
    model: &mut Model,
    reference: &Reference,
    names: &[&str],
    probe: GgmlType,
    importance: &dyn Fn(&str) -> Option<Vec<f32>>,
    mode: QuantMode,
) -> Result<f64, String> {
    let mut originals = Vec::with_capacity(names.len());
    for &name in names {
        let quantized = quantize_in_place(model, name, probe, importance(name).as_deref(), mode)?;
        originals.push((name, model.replace(name, probe, quantized)?));
    }
    let kld = reference.kld(model);
    for (name, original) in originals {
        model.restore(name, original);
    }
    Ok(kld)
}

/// Tensor `name` of `model` decoded and quantized to `ty`, row by row.
fn quantize_in_place(
    model: &mut Model,
    name: &str,
    ty: GgmlType,
    importance: Option<&[f32]>,
    mode: QuantMode,
) -> Result<Arc<[u8]>, String> {
    let m = model
        .matrix_mut(name)
        .ok_or_else(|| format!("no weight matrix {name}"))?
        .clone();
    let w = model.weights(&m);
    let row_bytes = ty
        .row_bytes(m.cols)
        .ok_or_else(|| format!("{name}: rows of {} do not fit {ty}", m.cols))?;
    let mut out = vec![0u8; m.rows * row_bytes];
    let mut row = vec![0f32; m.cols];
    for (r, dst) in out.chunks_exact_mut(row_bytes).enumerate() {
        w.row(r, &mut row);
        llq_kernels::quantize_row_mode(ty, &row, dst, importance, mode);
    }
    Ok(out.into())
}
