#!/usr/bin/env python3
"""All-position logits of GGUF models as llama.cpp computes them (llama-cpp-python's Llama),
for tests/suite/runtime.rs, quant_parity.rs and compare.rs.

Usage: llama_logits.py [--kv-f32] TOKENIZER.model HELDOUT.txt N_TOKENS OUT_DIR NAME=MODEL.gguf...

Tokens: [1] + sentencepiece(TOKENIZER.model).encode(HELDOUT.txt's text), truncated to N_TOKENS
(the held-out ids of fixtures/README.md). Each model is loaded with
Llama(model_path, logits_all=True, n_ctx=N_TOKENS), evaluated once on those tokens, and its
logits written to OUT_DIR/NAME.f32 as [N_TOKENS][n_vocab] little-endian f32. Prints JSON:
{"ids": [...], "llama_ids": first N_TOKENS ids of the first model's own tokenizer (BOS added)
on the same text, "n_vocab": int}.
"""

import json
import os
import sys

import numpy as np
import sentencepiece as spm
from llama_cpp import Llama

GGML_TYPE_F32 = 0


def main():
    args = sys.argv[1:]
    kv_f32 = "--kv-f32" in args
    if kv_f32:
        args.remove("--kv-f32")
    if len(args) < 5:
        sys.exit(__doc__)
    tok_model, text_path, n_tokens, out_dir = args[0], args[1], int(args[2]), args[3]
    # llama.cpp's default KV cache is F16; --kv-f32 keeps K and V in F32, as llq's runtime does.
    kv = {"type_k": GGML_TYPE_F32, "type_v": GGML_TYPE_F32} if kv_f32 else {}
    with open(text_path, "rb") as f:
        raw = f.read()
    # newline="" equivalent: the bytes are decoded as is, CRLF stays CRLF.
    text = raw.decode("utf-8")
    sp = spm.SentencePieceProcessor(model_file=tok_model)
    ids = ([1] + sp.encode(text))[:n_tokens]
    result = {"ids": ids}
    for i, arg in enumerate(args[4:]):
        name, path = arg.split("=", 1)
        llm = Llama(model_path=path, logits_all=True, n_ctx=n_tokens, n_batch=n_tokens,
                    n_threads=2, verbose=False, **kv)
        if i == 0:
            result["llama_ids"] = llm.tokenize(raw, add_bos=True, special=False)[:n_tokens]
            result["n_vocab"] = llm.n_vocab()
        llm.eval(ids)
        logits = np.ascontiguousarray(llm.scores[:len(ids), :], dtype="<f4")
        logits.tofile(os.path.join(out_dir, name + ".f32"))
        llm.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
