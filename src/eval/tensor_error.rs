//! `llq error`: how far each quantized tensor's weights are from the reference's.

use crate::checkpoint::Source;
use crate::error::{Error, Result};
use rayon::prelude::*;
use serde::Serialize;

/// Relative RMSE of one tensor's dequantized weights against the reference.
#[derive(Clone, Debug, Serialize)]
pub struct TensorErrorRow {
    pub name: String,
    pub ref_type: String,
    pub quant_type: String,
    /// sqrt(Σ (q − r)² / Σ r²).
    pub rel_rmse: f64,
}

/// Every tensor present in both (by GGUF name, same shape), worst first. Tensors are read a
/// block of rows at a time, so memory stays small.
pub fn tensor_errors(reference: &Source, quant: &Source) -> Result<Vec<TensorErrorRow>> {
    let mut rows = Vec::new();
    for q in &quant.tensors {
        let Some(r) = reference.tensors.iter().find(|r| r.name == q.name) else {
            return Err(Error::file(
                &reference.path,
                format!(
                    "has no tensor {} (which {} has)",
                    q.name,
                    quant.path.display()
                ),
            ));
        };
        if r.shape != q.shape {
            return Err(Error::file(
                &quant.path,
                format!(
                    "tensor {} has shape {:?} here but {:?} in the reference",
                    q.name, q.shape, r.shape
                ),
            ));
        }
        let (n_rows, cols) = (q.reader.rows(), q.reader.cols());
        let block = (1 << 16) / cols.max(1) + 1;
        let (num, den) = (0..n_rows.div_ceil(block))
            .into_par_iter()
            .map(|b| {
                let first = b * block;
                let n = block.min(n_rows - first);
                let mut a = vec![0f32; n * cols];
                let mut c = vec![0f32; n * cols];
                r.reader.read_rows(first, &mut a);
                q.reader.read_rows(first, &mut c);
                a.iter().zip(&c).fold((0f64, 0f64), |(num, den), (&x, &y)| {
                    let d = f64::from(y) - f64::from(x);
                    (num + d * d, den + f64::from(x) * f64::from(x))
                })
            })
            .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        rows.push(TensorErrorRow {
            name: q.name.clone(),
            ref_type: r.stored_type().to_string(),
            quant_type: q.stored_type().to_string(),
            rel_rmse: if den > 0.0 {
                (num / den).sqrt()
            } else {
                num.sqrt()
            },
        });
    }
    rows.sort_by(|a, b| b.rel_rmse.total_cmp(&a.rel_rmse));
    Ok(rows)
}
