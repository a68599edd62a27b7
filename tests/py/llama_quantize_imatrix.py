#!/usr/bin/env python3
"""Quantize with llama.cpp's own llama_model_quantize given an importance matrix, and compare
with llq's files (tests/imatrix.rs).

Usage: llama_quantize_imatrix.py IN.gguf IMATRIX_DAT LLQ_DIR TYPE...

The legacy imatrix is read as llama-quantize loads it (sum / ncall) and passed through
llama_model_quantize_params.imatrix. For each TYPE (Q4_0, Q4_K_M, ...), LLQ_DIR/TYPE.gguf must
equal llama.cpp's file as llama_cpp_layout.differences defines it: the same tensors (names,
types, shapes, bytes) and metadata, in llama.cpp's order, but for the quantize.imatrix.* keys
that llq writes as the llama-quantize tool does (through kv overrides, which this call of
llama_model_quantize does not pass). Prints one line per type; exits 1 listing the
differences.
"""

import ctypes
import os
import sys
import tempfile

import llama_cpp
import numpy as np
from gguf import GGUFReader

import llama_cpp_layout
from imatrix_oracle import read_legacy_imatrix
from llama_quantize import ftype, quantize


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    src, dat, ours_dir = sys.argv[1:4]
    entries = read_legacy_imatrix(dat)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in entries.items()}
    table = (llama_cpp.llama_model_imatrix_data * (len(arrays) + 1))()
    names = []
    for i, (name, values) in enumerate(arrays.items()):
        names.append(name.encode())
        table[i].name = names[-1]
        table[i].data = values.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        table[i].size = values.size
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for ty in sys.argv[4:]:
            dst = os.path.join(tmp, ty + ".gguf")
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = ftype(ty)
            params.nthread = 2
            params.imatrix = table
            rc, tail = quantize_with(params, src, dst)
            if rc != 0:
                failures.append(f"{ty}: llama_model_quantize failed ({rc}): {tail}")
                continue
            ours = os.path.join(ours_dir, ty + ".gguf")
            diff = llama_cpp_layout.differences(ours, dst, skip_key_prefix="quantize.imatrix.")
            n_tensors = len(GGUFReader(dst).tensors)
            print(f"{ty}: {n_tensors} tensors, {len(diff)} differences")
            if diff:
                failures.append(f"{ty}: " + ", ".join(diff))
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


def quantize_with(params, src, dst):
    """llama_quantize.quantize with our params (its fd-2 capture, same call)."""
    saved_default = llama_cpp.llama_model_quantize_default_params
    llama_cpp.llama_model_quantize_default_params = lambda: params
    try:
        return quantize(src, dst, params.ftype, params.nthread)
    finally:
        llama_cpp.llama_model_quantize_default_params = saved_default


if __name__ == "__main__":
    main()
