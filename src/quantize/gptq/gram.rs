//! What GPTQ weighs rounding errors by: the Gram matrix H = Σ x xᵀ of a matrix's inputs over
//! every token of the calibration chunks (the layer's Hessian up to a factor), one per distinct
//! matrix input. Q, K and V read the same input (attn_norm's output),
//! and so do gate and up (ffn_norm's output): each pair or triple shares one H.

use crate::runtime::forward::MatmulObserver;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The matrix whose input stands for the inputs of `name` (a GGUF weight name): Q for K and V,
/// gate for up, itself otherwise.
pub fn input_of(name: &str) -> String {
    let shared = [
        (".attn_k.weight", ".attn_q.weight"),
        (".attn_v.weight", ".attn_q.weight"),
        (".ffn_up.weight", ".ffn_gate.weight"),
    ];
    for (from, to) in shared {
        if let Some(prefix) = name.strip_suffix(from) {
            return format!("{prefix}{to}");
        }
    }
    name.to_string()
}

/// One input's H (n × n, row-major, f32 sums) and the tokens it has seen.
pub struct Gram {
    pub n: usize,
    pub h: Vec<f32>,
    pub tokens: u64,
}

/// Accumulates the Gram matrices of the inputs named in `wanted` (names as [`input_of`] gives them)
/// while a session runs.
pub struct GramCollector {
    wanted: Vec<String>,
    grams: Mutex<BTreeMap<String, Gram>>,
}

impl GramCollector {
    pub fn new(wanted: Vec<String>) -> GramCollector {
        GramCollector {
            wanted,
            grams: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn into_grams(self) -> BTreeMap<String, Gram> {
        self.grams.into_inner().expect("no panic while collecting")
    }
}

impl MatmulObserver for GramCollector {
    fn observe(&self, name: &str, x: &[f32], cols: usize) {
        if !self.wanted.iter().any(|w| w == name) {
            return;
        }
        let mut all = self.grams.lock().expect("no panic while collecting");
        let e = all.entry(name.to_string()).or_insert_with(|| Gram {
            n: cols,
            h: vec![0f32; cols * cols],
            tokens: 0,
        });
        assert_eq!(e.n, cols, "{name}: input width changed");
        llq_kernels::linalg::gram_accumulate(&mut e.h, x, cols);
        e.tokens += (x.len() / cols) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_inputs_map_to_one_matrix() {
        assert_eq!(input_of("blk.3.attn_k.weight"), "blk.3.attn_q.weight");
        assert_eq!(input_of("blk.3.attn_v.weight"), "blk.3.attn_q.weight");
        assert_eq!(input_of("blk.0.ffn_up.weight"), "blk.0.ffn_gate.weight");
        assert_eq!(input_of("blk.0.ffn_down.weight"), "blk.0.ffn_down.weight");
        assert_eq!(input_of("output.weight"), "output.weight");
    }

    #[test]
    fn collects_only_what_is_wanted() {
        let c = GramCollector::new(vec!["blk.0.attn_q.weight".into()]);
        c.observe("blk.0.attn_q.weight", &[1.0, 2.0, 3.0, 4.0], 2);
        c.observe("blk.0.attn_k.weight", &[9.0, 9.0], 2);
        let h = c.into_grams();
        assert_eq!(h.len(), 1);
        let h = &h["blk.0.attn_q.weight"];
        assert_eq!((h.n, h.tokens), (2, 2));
        assert_eq!(h.h, vec![10.0, 14.0, 14.0, 20.0]);
    }
}
