#!/usr/bin/env python3
"""Reference bytes for llq's legacy block quantizers (kernels/tests/suite/legacy/).

Usage: quants_oracle.py ROWS_F32 N_PER_ROW OUT_DIR [--raw BYTES] [--ggml LIB [--imatrix IMAT_F32]]

ROWS_F32 holds little-endian f32 rows of N_PER_ROW values. For each of Q8_0 Q4_0 Q4_1 Q5_0 Q5_1
this writes, in OUT_DIR:
  TYPE.q        gguf.quants.quantize(rows)      (gguf-py's numpy port of quantize_row_*_ref)
  TYPE.deq      gguf.quants.dequantize(TYPE.q)  as f32
  TYPE.raw.deq  gguf.quants.dequantize of arbitrary bytes (--raw: the file's first whole blocks)
With --ggml (a libggml-base.so, e.g. the one llama-cpp-python ships) it also asks the real ggml,
through its exported ggml_quantize_chunk:
  TYPE.ggml.q       without importance (ggml then takes the _ref path)
  TYPE.ggml_imat.q  with the per-column importance of --imatrix (N_PER_ROW f32)
"""

import argparse
import ctypes
import os

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize, quantize

TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]


def ggml_quantize(lib, qtype, rows, imatrix):
    fn = lib.ggml_quantize_chunk
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                   ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    nrows, n = rows.shape
    block, size = GGML_QUANT_SIZES[qtype]
    out = np.zeros(nrows * n // block * size, dtype=np.uint8)
    src = np.ascontiguousarray(rows, dtype=np.float32)
    imat = None if imatrix is None else np.ascontiguousarray(imatrix, dtype=np.float32)
    written = fn(int(qtype), src.ctypes.data, out.ctypes.data, 0, nrows, n,
                 None if imat is None else imat.ctypes.data)
    assert written == out.size, (qtype, written, out.size)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rows")
    ap.add_argument("n_per_row", type=int)
    ap.add_argument("out_dir")
    ap.add_argument("--raw")
    ap.add_argument("--ggml")
    ap.add_argument("--imatrix")
    args = ap.parse_args()

    rows = np.fromfile(args.rows, dtype="<f4").reshape(-1, args.n_per_row)
    raw = None if args.raw is None else np.fromfile(args.raw, dtype=np.uint8)
    lib = None if args.ggml is None else ctypes.CDLL(args.ggml)
    imatrix = None if args.imatrix is None else np.fromfile(args.imatrix, dtype="<f4")

    out = lambda name: os.path.join(args.out_dir, name)
    with np.errstate(all="ignore"):  # zero, subnormal and overflowing blocks are tested on purpose
        for name in TYPES:
            qtype = GGMLQuantizationType[name]
            q = quantize(rows, qtype)
            q.tofile(out(f"{name}.q"))
            dequantize(q, qtype).astype("<f4").tofile(out(f"{name}.deq"))
            if raw is not None:
                size = GGML_QUANT_SIZES[qtype][1]
                blocks = raw[: raw.size // size * size].reshape(-1, size)
                dequantize(blocks, qtype).astype("<f4").tofile(out(f"{name}.raw.deq"))
            if lib is not None:
                ggml_quantize(lib, qtype, rows, None).tofile(out(f"{name}.ggml.q"))
                if imatrix is not None:
                    ggml_quantize(lib, qtype, rows, imatrix).tofile(out(f"{name}.ggml_imat.q"))


if __name__ == "__main__":
    main()
