//! Row access to a logical 2-D tensor assembled from memory-mapped pieces: one tensor, shards
//! joined along rows or columns, and HF's rotary row permutation undone on the fly. Nothing is
//! materialized beyond the rows asked for, so memory stays bounded whatever the model size.

use llq_formats::{DType, MappedTensors, TensorEntry};
use llq_types::GgmlType;
use memmap2::Mmap;
use std::ops::Range;
use std::sync::Arc;

/// One stored tensor: where its bytes are, how they are encoded, and their rows × cols shape.
#[derive(Clone)]
pub struct Piece {
    map: Arc<Mmap>,
    range: Range<usize>,
    ty: GgmlType,
    rows: usize,
    cols: usize,
}

impl Piece {
    /// A tensor of a safetensors or .pth file; `None` unless its dtype is F32, F16 or BF16.
    pub fn from_entry(file: &MappedTensors, entry: &TensorEntry) -> Option<Piece> {
        let ty = match entry.dtype {
            DType::F32 => GgmlType::F32,
            DType::F16 => GgmlType::F16,
            DType::BF16 => GgmlType::BF16,
            _ => return None,
        };
        let (rows, cols) = as_matrix(&entry.shape);
        Some(Piece {
            map: file.map.clone(),
            range: entry.range.clone(),
            ty,
            rows,
            cols,
        })
    }

    /// A GGUF tensor of any type llq can decode, with its row-major shape.
    pub fn from_gguf(map: Arc<Mmap>, range: Range<usize>, ty: GgmlType, shape: &[usize]) -> Piece {
        let (rows, cols) = as_matrix(shape);
        Piece {
            map,
            range,
            ty,
            rows,
            cols,
        }
    }

    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Let the kernel drop this piece's resident pages for rows `first..first + n` once they
    /// are converted, so a multi-gigabyte input does not stay in the process's RSS.
    fn release_rows(&self, first: usize, n: usize) {
        let row = self
            .ty
            .row_bytes(self.cols)
            .expect("whole blocks checked at open");
        let offset = self.range.start + first * row;
        // SAFETY: the map is a read-only, file-backed shared mapping that llq never writes, so
        // MADV_DONTNEED only unmaps pages; a later read faults them back in from the file.
        // Failure is harmless (the pages stay resident), hence ignored.
        #[cfg(unix)]
        unsafe {
            let _ = self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                offset,
                n * row,
            );
        }
        #[cfg(not(unix))]
        let _ = offset;
    }

    /// The bytes of rows `first..first + n`.
    fn rows_bytes(&self, first: usize, n: usize) -> &[u8] {
        let row = self
            .ty
            .row_bytes(self.cols)
            .expect("whole blocks checked at open");
        &self.map[self.range.clone()][first * row..(first + n) * row]
    }
}

/// A tensor's shape seen as a matrix: the first dim is rows, the rest are flattened into
/// columns; a 1-D tensor is one row.
pub fn as_matrix(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (1, *n),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    }
}

/// How the pieces of a tensor join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// Concatenated along dim 0 (also the single-piece case).
    Rows,
    /// Concatenated along dim 1: each logical row is the pieces' rows side by side.
    Cols,
}

/// A logical tensor read row by row.
#[derive(Clone)]
pub struct TensorReader {
    pieces: Vec<Piece>,
    join: Join,
    rows: usize,
    cols: usize,
    /// HF rotary permutation to undo: the number of heads the rows are grouped in.
    unpermute_heads: Option<usize>,
}

impl TensorReader {
    /// Join `pieces` (all of one float dtype, already checked to fit together).
    pub fn new(pieces: Vec<Piece>, join: Join) -> TensorReader {
        let (rows, cols) = match join {
            Join::Rows => (pieces.iter().map(|p| p.rows).sum(), pieces[0].cols),
            Join::Cols => (pieces[0].rows, pieces.iter().map(|p| p.cols).sum()),
        };
        TensorReader {
            pieces,
            join,
            rows,
            cols,
            unpermute_heads: None,
        }
    }

    /// Undo HF's rotate-half permutation of Q/K rows, grouped in `heads` heads: GGUF row
    /// `h·hd + 2i + j` is HF row `h·hd + j·hd/2 + i`.
    pub fn unpermute_rotary(mut self, heads: usize) -> TensorReader {
        self.unpermute_heads = Some(heads);
        self
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The stored encoding (of the first piece; pieces are checked to agree).
    pub fn stored_type(&self) -> GgmlType {
        self.pieces[0].ty
    }

    /// Bytes of source data behind this tensor.
    pub fn source_bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.range.len() as u64).sum()
    }

    /// The stored row behind logical row `r`.
    fn stored_row(&self, r: usize) -> usize {
        match self.unpermute_heads {
            None => r,
            Some(heads) => {
                let hd = self.rows / heads;
                let (head, within) = (r / hd, r % hd);
                head * hd + (within % 2) * (hd / 2) + within / 2
            }
        }
    }

    /// Decode rows `first..first + out.len() / cols` into `out` as f32.
    pub fn read_rows(&self, first: usize, out: &mut [f32]) {
        let n = out.len() / self.cols;
        assert!(
            out.len().is_multiple_of(self.cols) && first + n <= self.rows,
            "row range"
        );
        if self.unpermute_heads.is_none() && self.join == Join::Rows && self.pieces.len() == 1 {
            // The common case: one contiguous run of rows, decoded in one call.
            decode(&self.pieces[0], first, n, out);
            return;
        }
        for (i, row_out) in out.chunks_exact_mut(self.cols).enumerate() {
            self.read_row(self.stored_row(first + i), row_out);
        }
    }

    /// Release the source pages behind logical rows `first..first + n` (see
    /// [`Piece::release_rows`]). With a row permutation the whole tensor must be done first.
    pub fn release_rows(&self, first: usize, n: usize) {
        if self.unpermute_heads.is_some() && n < self.rows {
            return;
        }
        match self.join {
            Join::Cols => self.pieces.iter().for_each(|p| p.release_rows(first, n)),
            Join::Rows => {
                let mut offset = 0;
                for p in &self.pieces {
                    let lo = first.max(offset);
                    let hi = (first + n).min(offset + p.rows);
                    if lo < hi {
                        p.release_rows(lo - offset, hi - lo);
                    }
                    offset += p.rows;
                }
            }
        }
    }

    fn read_row(&self, r: usize, out: &mut [f32]) {
        match self.join {
            Join::Rows => {
                let mut r = r;
                for p in &self.pieces {
                    if r < p.rows {
                        return decode(p, r, 1, out);
                    }
                    r -= p.rows;
                }
                unreachable!("row {r} beyond the pieces");
            }
            Join::Cols => {
                let mut at = 0;
                for p in &self.pieces {
                    decode(p, r, 1, &mut out[at..at + p.cols]);
                    at += p.cols;
                }
            }
        }
    }
}

/// Decode rows of a piece into f32, row by row (a row is a whole number of blocks).
fn decode(piece: &Piece, first: usize, n: usize, out: &mut [f32]) {
    let bytes = piece.rows_bytes(first, n);
    let row_bytes = bytes.len() / n;
    for (src, dst) in bytes
        .chunks_exact(row_bytes)
        .zip(out.chunks_exact_mut(piece.cols))
    {
        llq_kernels::dequantize_row(piece.ty, src, dst);
    }
}
