//! The cheap loss proxy of one tensor at one type: the expected squared perturbation of the
//! tensor's output per token, `Σ_rows Σ_j w_j (x_ij − x̂_ij)²` with `w_j` the mean square of
//! input column j (for the token embedding, a looked-up row's `‖x − x̂‖²` averaged over rows).
//! Measured on a sample of rows spread over the tensor, with the rounding the conversion
//! itself will use.

use llq_kernels::QuantMode;
use llq_types::GgmlType;

/// Rows sampled per tensor: enough for a stable mean, few enough to try every type fast.
pub const SAMPLE_ROWS: usize = 256;

/// The rows `sample` picks out of `n_rows`: evenly spread, first and last included.
pub fn sample(n_rows: usize) -> Vec<usize> {
    if n_rows <= SAMPLE_ROWS {
        return (0..n_rows).collect();
    }
    (0..SAMPLE_ROWS)
        .map(|i| i * (n_rows - 1) / (SAMPLE_ROWS - 1))
        .collect()
}

/// How a tensor's output perturbation is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// A matrix multiplying inputs whose columns have the given mean squares.
    Matmul,
    /// The token embedding: one row is looked up per token.
    Lookup,
}

/// Rows sampled from a tensor.
pub struct Sample<'a> {
    /// The sampled rows, each `row_len` long.
    pub rows: &'a [f32],
    pub row_len: usize,
    /// The tensor's rows in all.
    pub n_rows: usize,
    pub output: Output,
}

/// The proxy of each type in `types` for a tensor, from its sampled rows; `column_weights` are
/// the inputs' mean squares, `importance` what the rounding is steered by (an imatrix), as in
/// the conversion.
pub fn proxy_losses(
    sample: &Sample,
    column_weights: &[f32],
    importance: Option<&[f32]>,
    mode: QuantMode,
    types: &[GgmlType],
) -> Vec<f64> {
    let Sample {
        rows,
        row_len,
        n_rows,
        output,
    } = *sample;
    let sampled = rows.len() / row_len;
    types
        .iter()
        .map(|&ty| {
            let bytes = ty.row_bytes(row_len).expect("candidates fit the rows");
            let mut q = vec![0u8; bytes];
            let mut back = vec![0f32; row_len];
            let mut sum = 0f64;
            for row in rows.chunks_exact(row_len) {
                llq_kernels::quantize_row_mode(ty, row, &mut q, importance, mode);
                llq_kernels::dequantize_row(ty, &q, &mut back);
                sum += row
                    .iter()
                    .zip(&back)
                    .zip(column_weights)
                    .map(|((&x, &y), &w)| f64::from(w) * f64::from(x - y) * f64::from(x - y))
                    .sum::<f64>();
            }
            match output {
                Output::Matmul => sum * n_rows as f64 / sampled as f64,
                Output::Lookup => sum / sampled as f64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_spread_over_the_rows() {
        assert_eq!(sample(3), [0, 1, 2]);
        let s = sample(10_000);
        assert_eq!((s.len(), s[0], s[SAMPLE_ROWS - 1]), (SAMPLE_ROWS, 0, 9999));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn more_bits_lose_less() {
        let row_len = 512;
        let rows: Vec<f32> = (0..4 * row_len)
            .map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 0.1)
            .collect();
        let weights = vec![1f32; row_len];
        let types = [
            GgmlType::Q2_K,
            GgmlType::Q4_K,
            GgmlType::Q6_K,
            GgmlType::Q8_0,
        ];
        let sample = Sample {
            rows: &rows,
            row_len,
            n_rows: 4,
            output: Output::Matmul,
        };
        let l = proxy_losses(&sample, &weights, None, QuantMode::Ggml, &types);
        assert!(l.windows(2).all(|w| w[0] > w[1]), "{l:?}");
        // Per-column weights scale the loss.
        let double = vec![2f32; row_len];
        let l2 = proxy_losses(&sample, &double, None, QuantMode::Ggml, &types);
        assert!((l2[0] / l[0] - 2.0).abs() < 1e-9);
    }
}
