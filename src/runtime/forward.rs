//! The LLaMA forward pass over a batch of tokens at consecutive positions, with a KV cache:
//! many tokens at once for prompts and perplexity (matrix × matrix), one for generation.

use super::model::{Layer, Model};
use super::ops::{self, Rope};
use llq_kernels::attention::{axpys, dots, softmax, Rows};
use llq_kernels::matmul::{matmul, matmul_quantized, Activations, Weights};
use rayon::prelude::*;

/// Keys and values of every layer for positions `0..len`, in f32.
pub struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    kv_dim: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    pub fn new(model: &Model, capacity: usize) -> KvCache {
        let hp = &model.hp;
        let kv_dim = hp.n_head_kv * hp.head_dim();
        let layer = || vec![0f32; capacity * kv_dim];
        KvCache {
            k: (0..hp.n_layer).map(|_| layer()).collect(),
            v: (0..hp.n_layer).map(|_| layer()).collect(),
            kv_dim,
            capacity,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Forget the positions from `len` on (a conversation that continues from a prefix).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Which positions' logits a forward pass returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    All,
    Last,
    /// Batch positions `i..` (perplexity scores only the second half of a chunk).
    From(usize),
}

/// Sees the input of every matrix multiplication of the forward pass (for importance matrices):
/// `name` is the weight's GGUF name (`blk.0.attn_q.weight`, `output.weight`), `x` its input,
/// rows of `cols` values, one per token, in token order.
pub trait MatmulObserver: Sync {
    fn observe(&self, name: &str, x: &[f32], cols: usize);
}

/// The evaluator: a model plus the scratch state of a forward pass.
pub struct Session<'m> {
    pub model: &'m Model,
    rope: Rope,
    observer: Option<&'m dyn MatmulObserver>,
}

impl<'m> Session<'m> {
    pub fn new(model: &'m Model) -> Session<'m> {
        let hp = &model.hp;
        let rope = Rope::new(hp.head_dim(), hp.rope_theta, model.rope_freqs.as_deref());
        Session {
            model,
            rope,
            observer: None,
        }
    }

    /// A session that shows `observer` every matmul input (the plain path pays one branch).
    pub fn with_observer(model: &'m Model, observer: &'m dyn MatmulObserver) -> Session<'m> {
        Session {
            observer: Some(observer),
            ..Session::new(model)
        }
    }

    /// Show `x` (the input of the weight named by `name()`) to the observer, if any.
    fn observe(&self, name: impl FnOnce() -> String, x: &[f32], cols: usize) {
        if let Some(o) = self.observer {
            o.observe(&name(), x, cols);
        }
    }

    /// Run `tokens` at positions `cache.len()..`, append them to the cache and return logits
    /// (`n_vocab` per returned position). Panics if the cache is too small: callers check.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: Logits) -> Vec<f32> {
        let hp = &self.model.hp;
        let (n, d) = (tokens.len(), hp.n_embd);
        assert!(cache.len + n <= cache.capacity, "context overflow");
        let mut x = self.embed(tokens);
        for (i, layer) in self.model.layers.iter().enumerate() {
            self.layer(i, layer, &mut x, n, cache);
        }
        cache.len += n;
        let first = match which {
            Logits::All => 0,
            Logits::Last => n - 1,
            Logits::From(i) => i.min(n - 1),
        };
        let mut x = x[first * d..].to_vec();
        let rows = n - first;
        self.output_norm(&mut x);
        let mut logits = vec![0f32; rows * hp.n_vocab];
        matmul(&self.model.weights(&self.model.output), &x, &mut logits);
        logits
    }

    /// The token embeddings of `tokens`: the residual stream the first layer reads.
    pub fn embed(&self, tokens: &[u32]) -> Vec<f32> {
        let d = self.model.hp.n_embd;
        let embd = self.model.weights(&self.model.tok_embd);
        let mut x = vec![0f32; tokens.len() * d];
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            embd.row(t as usize, row);
        }
        x
    }

    /// Run layer `index` alone over the residual stream `x` of a whole sequence (positions
    /// from 0), in place: for layer-by-layer passes that keep every sequence's stream between
    /// layers. Only layer `index` of `cache` is written.
    pub fn run_layer(&self, index: usize, x: &mut [f32], cache: &mut KvCache) {
        let n = x.len() / self.model.hp.n_embd;
        assert!(n <= cache.capacity, "context overflow");
        cache.len = 0;
        self.layer(index, &self.model.layers[index], x, n, cache);
    }

    /// The final RMSNorm, in place, shown to the observer as the input of output.weight (when
    /// that is a weight of its own).
    pub fn output_norm(&self, x: &mut [f32]) {
        let hp = &self.model.hp;
        for row in x.chunks_exact_mut(hp.n_embd) {
            ops::rms_norm(row, &self.model.output_norm, hp.norm_eps);
        }
        if !hp.tied_embeddings {
            self.observe(|| "output.weight".into(), x, hp.n_embd);
        }
    }

    fn layer(&self, index: usize, layer: &Layer, x: &mut [f32], n: usize, cache: &mut KvCache) {
        let m = self.model;
        let hp = &m.hp;
        let (d, hd, kv_dim) = (hp.n_embd, hp.head_dim(), cache.kv_dim);
        let start = cache.len;

        let mut h = x.to_vec();
        for row in h.chunks_exact_mut(d) {
            ops::rms_norm(row, &layer.attn_norm, hp.norm_eps);
        }
        let mut q = vec![0f32; n * d];
        let k = &mut cache.k[index][start * kv_dim..(start + n) * kv_dim];
        let v = &mut cache.v[index][start * kv_dim..(start + n) * kv_dim];
        let name = |s: &str| format!("blk.{index}.{s}.weight");
        for s in ["attn_q", "attn_k", "attn_v"] {
            self.observe(|| name(s), &h, d);
        }
        let mut shared = SharedInput::new(&h, d);
        shared.matmul(&m.weights(&layer.wq), &mut q);
        shared.matmul(&m.weights(&layer.wk), k);
        shared.matmul(&m.weights(&layer.wv), v);
        for t in 0..n {
            self.rope.apply(&mut q[t * d..(t + 1) * d], hd, start + t);
            let k = &mut cache.k[index][(start + t) * kv_dim..(start + t + 1) * kv_dim];
            self.rope.apply(k, hd, start + t);
        }

        let attn = attention(
            &q,
            &cache.k[index][..(start + n) * kv_dim],
            &cache.v[index][..(start + n) * kv_dim],
            AttnShape {
                n_head: hp.n_head,
                n_head_kv: hp.n_head_kv,
                head_dim: hd,
                start,
            },
        );
        let mut o = vec![0f32; n * d];
        self.observe(|| name("attn_output"), &attn, d);
        matmul(&m.weights(&layer.wo), &attn, &mut o);
        add(x, &o);

        h.copy_from_slice(x);
        for row in h.chunks_exact_mut(d) {
            ops::rms_norm(row, &layer.ffn_norm, hp.norm_eps);
        }
        let mut gate = vec![0f32; n * hp.n_ff];
        let mut up = vec![0f32; n * hp.n_ff];
        for s in ["ffn_gate", "ffn_up"] {
            self.observe(|| name(s), &h, d);
        }
        let mut shared = SharedInput::new(&h, d);
        shared.matmul(&m.weights(&layer.w_gate), &mut gate);
        shared.matmul(&m.weights(&layer.w_up), &mut up);
        ops::swiglu(&mut gate, &up);
        self.observe(|| name("ffn_down"), &gate, hp.n_ff);
        matmul(&m.weights(&layer.w_down), &gate, &mut o);
        add(x, &o);
    }
}

/// One input multiplied by several matrices (Q, K, V; gate, up): its activations are quantized
/// once per activation type rather than once per matrix.
struct SharedInput<'x> {
    x: &'x [f32],
    cols: usize,
    quantized: Vec<Activations>,
}

impl<'x> SharedInput<'x> {
    fn new(x: &'x [f32], cols: usize) -> Self {
        SharedInput {
            x,
            cols,
            quantized: Vec::new(),
        }
    }

    fn matmul(&mut self, w: &Weights, out: &mut [f32]) {
        let want = w.ty.activation().expect("checked at load");
        let act = match self.quantized.iter().position(|a| a.ty == want) {
            Some(i) => &self.quantized[i],
            None => {
                self.quantized
                    .push(Activations::quantize(w.ty, self.x, self.cols));
                self.quantized.last().expect("just pushed")
            }
        };
        matmul_quantized(w, act, out);
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[derive(Clone, Copy)]
struct AttnShape {
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
    /// Position of the first query token.
    start: usize,
}

/// Causal multi-head attention with grouped KV heads: query token t (at position start + t)
/// attends to cached positions 0..=start + t. Parallel over (token, head).
fn attention(q: &[f32], k: &[f32], v: &[f32], s: AttnShape) -> Vec<f32> {
    let (hd, d) = (s.head_dim, s.n_head * s.head_dim);
    let kv_dim = s.n_head_kv * hd;
    let group = s.n_head / s.n_head_kv;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0f32; q.len()];
    out.par_chunks_mut(hd)
        .enumerate()
        .for_each_init(Vec::new, |scores, (i, out)| {
            let (t, head) = (i / s.n_head, i % s.n_head);
            let qh = &q[t * d + head * hd..t * d + (head + 1) * hd];
            let rows = |m| Rows {
                m,
                stride: kv_dim,
                off: (head / group) * hd,
                len: hd,
            };
            let n_pos = s.start + t + 1;
            scores.clear();
            scores.resize(n_pos, 0.0);
            dots(qh, rows(k), scores);
            for s in scores.iter_mut() {
                *s *= scale;
            }
            softmax(scores);
            axpys(scores, rows(v), out);
        });
    out
}
