#!/usr/bin/env python3
"""Reference statistics for tests/compare.rs: llama.cpp's logits (via tests/py/llama_logits.py's
files, [N_CTX][n_vocab] f32 of one chunk) turned into llq compare's statistics with numpy.

Usage: compare_ref.py IDS.json REF.f32 QUANT.f32 N_CTX

IDS.json is llama_logits.py's output (its "ids" are the chunk: BOS + the text's tokens). Scored
positions j = N_CTX/2 .. N_CTX-2 predict ids[j+1]. Prints JSON: ppl_ref, ppl_quant, ppl_ratio,
kld_mean, top1, rms_dp, tokens.
"""

import json
import sys

import numpy as np


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    ids = json.load(open(sys.argv[1]))["ids"]
    n_ctx = int(sys.argv[4])
    ref = np.fromfile(sys.argv[2], dtype="<f4")
    q = np.fromfile(sys.argv[3], dtype="<f4")
    n_vocab = ref.size // n_ctx
    ref, q = ref.reshape(n_ctx, n_vocab), q.reshape(n_ctx, n_vocab)
    first = n_ctx // 2
    rows = np.arange(first, n_ctx - 1)
    targets = np.array([ids[j + 1] for j in rows])
    lr, lq = log_softmax(ref[rows]), log_softmax(q[rows])
    kld = (np.exp(lr) * (lr - lq)).sum(axis=1)
    nll_r = -lr[np.arange(len(rows)), targets]
    nll_q = -lq[np.arange(len(rows)), targets]
    dp = np.exp(-nll_q) - np.exp(-nll_r)
    top1 = (ref[rows].argmax(axis=1) == q[rows].argmax(axis=1)).mean()
    print(json.dumps({
        "tokens": int(len(rows)),
        "ppl_ref": float(np.exp(nll_r.mean())),
        "ppl_quant": float(np.exp(nll_q.mean())),
        "ppl_ratio": float(np.exp(nll_q.mean() - nll_r.mean())),
        "kld_mean": float(kld.mean()),
        "kld_p99": float(np.percentile(kld, 99)),
        "top1": float(top1),
        "rms_dp": float(np.sqrt((dp * dp).mean())),
    }))


if __name__ == "__main__":
    main()
