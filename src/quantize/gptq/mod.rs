//! `--quant-mode gptq`: error-compensated rounding into ggml's block formats (GPTQ, Frantar et
//! al. 2022). The reference model (the source in F32) runs over the calibration chunks layer
//! by layer; at each layer the inputs of its matrices give one H = Σ x xᵀ per distinct input
//! ([`gram`]), factored once for the matrices that share it, and each matrix is quantized by
//! [`llq_kernels::gptq`], which spreads every column's rounding error over the columns not yet
//! rounded, weighted by H⁻¹. The files
//! hold the same block layouts as ggml's rounding writes; only the levels and scales differ.
//!
//! Which inputs layer l sees is [`Inputs`]: the reference's own activations, or those of the
//! layers before it already quantized (GPTQ's choice), which costs a second pass over each
//! layer. The compensated tensors wait in a [`Spill`] file until the writer reaches them;
//! token_embd (a lookup, not a product), float types and the i-quants are rounded as usual.

mod gram;
mod spill;

pub use spill::Spill;

use super::calibration::Calibration;
use super::pipeline::check_finite;
use super::policy::TensorTarget;
use crate::checkpoint::Source;
use crate::error::{Error, Result};
use crate::eval::reference::load_reference;
use crate::progress;
use crate::runtime::forward::{KvCache, Session};
use crate::runtime::model::{Matrix, Model};
use crate::tokenizer::Tokenizer;
use gram::{input_of, Gram, GramCollector};
use llq_kernels::gptq;
use llq_types::GgmlType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Where the calibration inputs of layer l come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Inputs {
    /// The reference model's activations (one pass per layer).
    Reference,
    /// The activations after the layers before l are quantized, so that each layer also
    /// compensates what the earlier ones lost (two passes per layer).
    #[default]
    Quantized,
}

#[derive(Clone, Debug)]
pub struct GptqOptions {
    pub calibration: Calibration,
    pub inputs: Inputs,
}

/// What the compensation did.
#[derive(Clone, Debug, Serialize)]
pub struct GptqReport {
    pub matrices: usize,
    pub chunks: usize,
    pub n_ctx: usize,
    pub inputs: Inputs,
    /// Tensors rounded without compensation after all, and why.
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// The compensated tensors (by GGUF name) and the report.
pub struct Compensated {
    pub spill: Spill,
    pub report: GptqReport,
}

/// The matrices of one layer, in the order of the forward pass.
const LAYER_MATRICES: [&str; 7] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// Quantize every matrix of `targets` that GPTQ can write, with its imatrix entry (if any)
/// steering the block scales.
pub fn compensate(
    source: &Source,
    targets: &[TensorTarget],
    importance: &[Option<Vec<f32>>],
    opts: &GptqOptions,
    allow_nonfinite: bool,
    show_progress: bool,
) -> Result<Compensated> {
    let started = Instant::now();
    let mut model = load_reference(&source.path)?;
    let tok = Tokenizer::from_model(&model)?;
    let chunks = opts.calibration.chunks(&tok)?;
    let n_ctx = chunks[0].len();
    let mut work: BTreeMap<String, (GgmlType, Option<&[f32]>)> = BTreeMap::new();
    for (t, imp) in targets.iter().zip(importance) {
        if t.name != "token_embd.weight"
            && gptq::supports(t.ty)
            && model.matrix_mut(&t.name).is_some()
        {
            work.insert(t.name.clone(), (t.ty, imp.as_deref()));
        }
    }
    let bar = show_progress.then(|| progress::count_bar(work.len() as u64, "matrices"));
    let mut job = Job {
        work,
        spill: Spill::new().map_err(|e| Error::io(&source.path, "cannot create a temp file", e))?,
        warnings: Vec::new(),
        bar,
        allow_nonfinite,
    };

    crate::runtime::run_command(|| -> Result<()> {
        let mut states: Vec<Vec<f32>> = {
            let session = Session::new(&model);
            chunks.iter().map(|c| session.embed(c)).collect()
        };
        let mut cache = KvCache::new(&model, n_ctx);
        for l in 0..model.hp.n_layer {
            let names: Vec<String> = LAYER_MATRICES
                .iter()
                .map(|k| format!("blk.{l}.{k}.weight"))
                .filter(|n| job.work.contains_key(n))
                .collect();
            let inputs = (opts.inputs == Inputs::Quantized).then(|| states.clone());
            let collector = GramCollector::new(names.iter().map(|n| input_of(n)).collect());
            {
                let session = Session::with_observer(&model, &collector);
                for x in &mut states {
                    session.run_layer(l, x, &mut cache);
                }
            }
            let originals =
                job.quantize_all(&mut model, &names, collector.into_grams(), &source.path)?;
            if let Some(inputs) = inputs {
                states = inputs;
                let session = Session::new(&model);
                for x in &mut states {
                    session.run_layer(l, x, &mut cache);
                }
            }
            // The layer's quantized bytes are in the spill: memory holds one layer's at a time.
            for (name, original) in originals {
                model.restore(&name, original);
            }
        }
        if job.work.contains_key("output.weight") {
            let names = ["output.weight".to_string()];
            let collector = GramCollector::new(names.to_vec());
            let session = Session::with_observer(&model, &collector);
            for x in &mut states {
                session.output_norm(x);
            }
            job.quantize_all(&mut model, &names, collector.into_grams(), &source.path)?;
        }
        Ok(())
    })?;
    if let Some(bar) = job.bar {
        bar.finish_and_clear();
    }
    Ok(Compensated {
        report: GptqReport {
            matrices: job.spill.len(),
            chunks: chunks.len(),
            n_ctx,
            inputs: opts.inputs,
            warnings: job.warnings,
            seconds: started.elapsed().as_secs_f64(),
        },
        spill: job.spill,
    })
}

/// The matrices still to quantize and where the results go.
struct Job<'a> {
    work: BTreeMap<String, (GgmlType, Option<&'a [f32]>)>,
    spill: Spill,
    warnings: Vec<String>,
    bar: Option<indicatif::ProgressBar>,
    allow_nonfinite: bool,
}

impl Job<'_> {
    /// Quantize the matrices `names` of `model`, each with the Gram matrix of its input
    /// (factored once per input), spill the results and put them in the model (so that a pass
    /// over the layer sees them); returns the matrices replaced. A matrix whose H the kernels
    /// refuse (not positive definite even after damping) is left to the ordinary rounding, with
    /// a warning.
    fn quantize_all(
        &mut self,
        model: &mut Model,
        names: &[String],
        grams: BTreeMap<String, Gram>,
        source: &Path,
    ) -> Result<Vec<(String, Matrix)>> {
        let mut originals = Vec::new();
        let options = gptq::Options::default();
        let mut factored: BTreeMap<String, std::result::Result<gptq::Hessian, gptq::Error>> =
            BTreeMap::new();
        for name in names {
            let input = input_of(name);
            let gram = &grams[&input];
            let hessian = factored
                .entry(input)
                .or_insert_with(|| gptq::Hessian::new(&gram.h, gram.n, &options));
            if let Some(bar) = &self.bar {
                bar.set_message(name.clone());
            }
            match hessian {
                Ok(hessian) => {
                    let original = self.quantize(model, name, hessian, &options, source)?;
                    originals.push((name.clone(), original));
                }
                Err(e) => self
                    .warnings
                    .push(format!("{name}: {e}; rounded without error compensation")),
            }
            if let Some(bar) = &self.bar {
                bar.inc(1);
            }
        }
        Ok(originals)
    }

    fn quantize(
        &mut self,
        model: &mut Model,
        name: &str,
        hessian: &gptq::Hessian,
        options: &gptq::Options,
        source: &Path,
    ) -> Result<Matrix> {
        let (ty, importance) = self.work[name];
        let m = model
            .matrix_mut(name)
            .ok_or_else(|| Error::file(source, format!("no weight matrix {name}")))?
            .clone();
        let weights = model.weights(&m);
        let mut w = vec![0f32; m.rows * m.cols];
        for (r, row) in w.chunks_exact_mut(m.cols).enumerate() {
            weights.row(r, row);
        }
        if !self.allow_nonfinite {
            check_finite(name, 0, m.cols, &w).map_err(|msg| Error::file(source, msg))?;
        }
        let bytes = gptq::quantize_with(ty, &w, hessian, importance, options)
            .map_err(|e| Error::file(source, format!("{name}: {e}")))?;
        self.spill
            .put(name, &bytes)
            .map_err(|e| Error::io(source, "cannot write a temp file", e))?;
        model
            .replace(name, ty, bytes.into())
            .map_err(|e| Error::file(source, e))
    }
}
