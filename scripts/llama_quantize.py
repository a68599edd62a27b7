#!/usr/bin/env python3
"""Quantize a GGUF with llama.cpp's own quantizer, through llama-cpp-python's C binding.

The peer half of scripts/bench-convert.sh: llama.cpp's path to a quantized GGUF is
convert_hf_to_gguf.py (HF -> F16 GGUF) followed by llama-quantize; llama-cpp-python ships the
same library code as `llama_model_quantize`, so no llama.cpp build is needed.

Usage: llama_quantize.py IN.gguf OUT.gguf FTYPE NTHREAD
FTYPE is llama.cpp's llama_ftype number: 7 = Q8_0, 2 = Q4_0, 15 = Q4_K_M.
"""

import sys

import llama_cpp


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    src, dst, ftype, nthread = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = nthread
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        sys.exit(f"llama_model_quantize failed with {rc}")


if __name__ == "__main__":
    main()
