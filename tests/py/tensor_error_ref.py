#!/usr/bin/env python3
"""Relative RMSE of every tensor of a quantized GGUF against an F32 GGUF of the same model, with
gguf-py's dequantization (numpy ports of ggml's dequantize_row_*), for tests/suite/compare.rs.

Usage: tensor_error_ref.py F32.gguf QUANT.gguf

Prints JSON {tensor name: sqrt(sum((q - r)^2) / sum(r^2))}, sums in float64.
"""

import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType
from gguf.quants import dequantize


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ref = {t.name: t for t in GGUFReader(sys.argv[1]).tensors}
    out = {}
    for t in GGUFReader(sys.argv[2]).tensors:
        r = ref[t.name]
        if r.tensor_type != GGMLQuantizationType.F32:
            sys.exit("%s is not F32 in the reference" % t.name)
        x = np.asarray(r.data, dtype=np.float64).reshape(-1)
        q = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)
        out[t.name] = float(np.sqrt(((q - x) ** 2).sum() / (x * x).sum()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
