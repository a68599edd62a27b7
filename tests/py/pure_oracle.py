#!/usr/bin/env python3
"""Reference bytes of whole-tensor legacy quantization, for tests/quant_parity.rs.

Usage: pure_oracle.py F32.gguf TYPE...

For every 2-D F32 tensor of F32.gguf and every TYPE (Q8_0 Q4_0 Q4_1 Q5_0 Q5_1), quantizes the
tensor's rows with gguf-py's gguf.quants.quantize (numpy port of ggml's quantize_row_*_ref).
Prints JSON {TYPE: {tensor name: sha256 of the quantized bytes}}.
"""

import hashlib
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType
from gguf.quants import quantize


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    reader = GGUFReader(sys.argv[1])
    result = {name: {} for name in sys.argv[2:]}
    for t in reader.tensors:
        if t.tensor_type != GGMLQuantizationType.F32:
            sys.exit("%s is not F32" % t.name)
        if len(t.shape) != 2:
            continue
        # gguf-py gives ggml order (row length first); numpy wants rows x row length.
        rows = np.asarray(t.data, dtype=np.float32).reshape(int(t.shape[1]), int(t.shape[0]))
        for name in result:
            q = quantize(rows, GGMLQuantizationType[name])
            result[name][t.name] = hashlib.sha256(q.tobytes()).hexdigest()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
