"""All-position logits of a GGUF as llama.cpp computes them (llama-cpp-python), for given ids.

Usage: llama3_logits.py MODEL.gguf OUT.f32 ID...
Writes [len(ids)][n_vocab] little-endian f32 to OUT.f32. The KV cache is F32 (llama.cpp's
default is F16), as llq's runtime keeps it, so the comparison is of the same arithmetic.
"""

import sys

import numpy as np
from llama_cpp import Llama

GGML_TYPE_F32 = 0


def main():
    model, out = sys.argv[1], sys.argv[2]
    ids = [int(x) for x in sys.argv[3:]]
    m = Llama(model, logits_all=True, n_ctx=max(64, len(ids)), verbose=False,
              type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32)
    m.eval(ids)
    np.asarray(m.scores[: len(ids)], dtype="<f4").tofile(out)


if __name__ == "__main__":
    main()
