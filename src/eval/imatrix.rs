//! Importance matrices computed the way llama.cpp's `llama-imatrix` does: the text is tokenized
//! once with BOS and cut into chunks of `n_ctx` tokens; each chunk runs from an empty cache with
//! its first token replaced by BOS, and every one of its positions counts. For each matrix of the
//! blocks (and `output.weight` if asked), the sum of the squared input of every column is kept
//! with the number of input rows; the file stores `sum / rows × ncall` with `ncall` the number of
//! chunks, so that a reader's `value / ncall` is the mean squared activation.
//!
//! The sums are f64, each column summed over the tokens in order, so the result does not depend
//! on the number of threads.

use crate::runtime::forward::{KvCache, Logits, MatmulObserver, Session};
use crate::runtime::model::Model;
use llq_formats::imatrix::{LegacyEntry, LegacyImatrix};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Sums of squared activations per column of one weight, and how many rows (tokens) were seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ColumnStats {
    pub sum_sq: Vec<f64>,
    pub rows: u64,
}

impl ColumnStats {
    /// Mean squared activation of each column.
    pub fn mean(&self) -> Vec<f64> {
        self.sum_sq.iter().map(|s| s / self.rows as f64).collect()
    }
}

/// Collects [`ColumnStats`] per weight name from a session's matmul inputs.
pub struct Collector {
    process_output: bool,
    stats: Mutex<BTreeMap<String, ColumnStats>>,
}

/// Columns summed by one task: a block of columns, every row in order.
const COLUMN_BLOCK: usize = 64;

impl Collector {
    /// `process_output`: also collect `output.weight` (llama-imatrix's `--process-output`).
    pub fn new(process_output: bool) -> Collector {
        Collector {
            process_output,
            stats: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn into_stats(self) -> BTreeMap<String, ColumnStats> {
        self.stats.into_inner().expect("no panic while collecting")
    }
}

impl MatmulObserver for Collector {
    fn observe(&self, name: &str, x: &[f32], cols: usize) {
        if !(name.starts_with("blk.") || (self.process_output && name == "output.weight")) {
            return;
        }
        let mut stats = self.stats.lock().expect("no panic while collecting");
        let e = stats.entry(name.to_string()).or_default();
        if e.sum_sq.is_empty() {
            e.sum_sq = vec![0.0; cols];
        }
        assert_eq!(e.sum_sq.len(), cols, "{name}: input width changed");
        // Each column's sum runs over the rows in order, whoever computes it.
        e.sum_sq
            .par_chunks_mut(COLUMN_BLOCK)
            .enumerate()
            .for_each(|(b, sums)| {
                let first = b * COLUMN_BLOCK;
                for row in x.chunks_exact(cols) {
                    for (s, &v) in sums.iter_mut().zip(&row[first..]) {
                        *s += f64::from(v) * f64::from(v);
                    }
                }
            });
        e.rows += (x.len() / cols) as u64;
    }
}

/// The statistics of a run over some chunks of text.
#[derive(Clone, Debug)]
pub struct ImatrixResult {
    pub stats: BTreeMap<String, ColumnStats>,
    pub n_chunks: usize,
    pub n_ctx: usize,
}

impl ImatrixResult {
    /// llama-imatrix's legacy file: entries sorted by name, `ncall` the chunks a weight's rows
    /// make (rounded up), values `mean × ncall`; the trailer gives the chunk count and `dataset`.
    pub fn to_legacy(&self, dataset: &str) -> LegacyImatrix {
        let entries = self
            .stats
            .iter()
            .filter(|(_, s)| s.rows > 0)
            .map(|(name, s)| {
                let ncall = s.rows.div_ceil(self.n_ctx as u64);
                LegacyEntry {
                    name: name.clone(),
                    ncall: i32::try_from(ncall).expect("chunk count fits an i32"),
                    sums: s.mean().iter().map(|m| (m * ncall as f64) as f32).collect(),
                }
            })
            .collect();
        LegacyImatrix {
            entries,
            trailer: Some((self.n_chunks as u32, dataset.to_string())),
        }
    }
}

/// Run `n_chunks` chunks of `n_ctx` tokens and collect the matmul statistics;
/// `on_chunk(i)` reports progress.
pub fn compute(
    model: &Model,
    tokens: &[u32],
    n_ctx: usize,
    n_chunks: usize,
    bos: u32,
    process_output: bool,
    mut on_chunk: impl FnMut(usize),
) -> ImatrixResult {
    let collector = Collector::new(process_output);
    {
        let session = Session::with_observer(model, &collector);
        let mut cache = KvCache::new(model, n_ctx);
        // Logits of every position only when output.weight's inputs are wanted.
        let which = if process_output {
            Logits::All
        } else {
            Logits::Last
        };
        for c in 0..n_chunks {
            let mut batch = tokens[c * n_ctx..(c + 1) * n_ctx].to_vec();
            batch[0] = bos;
            cache.clear();
            session.forward(&batch, &mut cache, which);
            on_chunk(c);
        }
    }
    ImatrixResult {
        stats: collector.into_stats(),
        n_chunks,
        n_ctx,
    }
}
