#!/usr/bin/env python3
"""Importance matrix of an F32 LLaMA GGUF recomputed in numpy, checked against an `llq imatrix`
file (tests/imatrix_compute.rs).

Usage: imatrix_reference.py MODEL_F32.gguf TOKENS.u32 N_CTX N_CHUNKS IMATRIX.dat [--process-output]

TOKENS.u32: the whole text's token ids (BOS first), little-endian u32. As llama-imatrix does, the
ids are cut into N_CHUNKS chunks of N_CTX tokens, the first id of each replaced by BOS, and each
chunk run from an empty cache; every position counts. The forward pass is written here from the
LLaMA definition in float64 (RMSNorm, interleaved-pair RoPE as GGUF stores Q/K, grouped-query
causal attention, SwiGLU), and for each matrix the mean of x_j^2 over every input row x is kept.

The file is read in the legacy .dat layout (per entry: name, ncall, nval, sums) and each entry's
sums / ncall (what llama-quantize uses) compared with the mean. Prints one JSON object:
{"entries": {name: {"ncall": int, "max_rel_err": float}}, "missing": [...], "extra": [...]};
exits 1 when a weight is missing or extra, or a value is off by more than TOL relative.
"""

import json
import sys

import numpy as np
from gguf import GGUFReader

from imatrix_oracle import read_legacy_entries

# Measured on the fixture with README.md as the text: 3.9e-7 (SIMD kernels) and 2.7e-7
# (LLQ_KERNELS=scalar) on 2026-12-03's README, 6.6e-7 on an earlier one.
TOL = 3e-6


def field(reader, key):
    f = reader.fields[key]
    v = f.parts[f.data[0]]
    return v.tobytes().decode() if v.dtype == np.uint8 else v[0].item()


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, n_head, head_dim, theta):
    """Rotate each adjacent pair (2i, 2i+1) of every head by position * theta^(-2i/head_dim)."""
    n = x.shape[0]
    freqs = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    ang = np.arange(n, dtype=np.float64)[:, None] * freqs[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    h = x.reshape(n, n_head, head_dim // 2, 2)
    a, b = h[..., 0], h[..., 1]
    return np.stack([a * cos - b * sin, a * sin + b * cos], axis=-1).reshape(n, -1)


class Stats:
    def __init__(self):
        self.sum = {}
        self.rows = {}

    def add(self, name, x):
        self.sum[name] = self.sum.get(name, 0.0) + np.sum(x * x, axis=0)
        self.rows[name] = self.rows.get(name, 0) + x.shape[0]


def forward(w, hp, tokens, stats, process_output):
    n = len(tokens)
    n_head, n_kv, hd, eps = hp["n_head"], hp["n_kv"], hp["head_dim"], hp["eps"]
    group = n_head // n_kv
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    x = w["token_embd.weight"][tokens]
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        h = rms_norm(x, w[p + "attn_norm.weight"], eps)
        for t in ("attn_q", "attn_k", "attn_v"):
            stats.add(p + t + ".weight", h)
        q = rope(h @ w[p + "attn_q.weight"].T, n_head, hd, hp["theta"])
        k = rope(h @ w[p + "attn_k.weight"].T, n_kv, hd, hp["theta"])
        v = h @ w[p + "attn_v.weight"].T
        q = q.reshape(n, n_head, hd).transpose(1, 0, 2)
        k = np.repeat(k.reshape(n, n_kv, hd).transpose(1, 0, 2), group, axis=0)
        v = np.repeat(v.reshape(n, n_kv, hd).transpose(1, 0, 2), group, axis=0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        attn = (s @ v).transpose(1, 0, 2).reshape(n, n_head * hd)
        stats.add(p + "attn_output.weight", attn)
        x = x + attn @ w[p + "attn_output.weight"].T
        h = rms_norm(x, w[p + "ffn_norm.weight"], eps)
        for t in ("ffn_gate", "ffn_up"):
            stats.add(p + t + ".weight", h)
        g = h @ w[p + "ffn_gate.weight"].T
        act = g / (1.0 + np.exp(-g)) * (h @ w[p + "ffn_up.weight"].T)
        stats.add(p + "ffn_down.weight", act)
        x = x + act @ w[p + "ffn_down.weight"].T
    if process_output:
        stats.add("output.weight", rms_norm(x, w["output_norm.weight"], eps))


def main():
    if len(sys.argv) not in (6, 7):
        sys.exit(__doc__)
    model, tok_path, n_ctx, n_chunks, dat = sys.argv[1:6]
    n_ctx, n_chunks = int(n_ctx), int(n_chunks)
    process_output = sys.argv[6:] == ["--process-output"]
    r = GGUFReader(model)
    arch = field(r, "general.architecture")
    hp = {
        "n_layer": field(r, f"{arch}.block_count"),
        "n_head": field(r, f"{arch}.attention.head_count"),
        "n_kv": field(r, f"{arch}.attention.head_count_kv"),
        "eps": field(r, f"{arch}.attention.layer_norm_rms_epsilon"),
        "theta": field(r, f"{arch}.rope.freq_base"),
    }
    hp["head_dim"] = field(r, f"{arch}.embedding_length") // hp["n_head"]
    bos = field(r, "tokenizer.ggml.bos_token_id")
    w = {}
    for t in r.tensors:
        assert t.tensor_type == 0, f"{t.name} is not F32"
        w[t.name] = np.asarray(t.data, dtype=np.float64)
    tokens = np.fromfile(tok_path, dtype="<u4").astype(np.int64)
    assert len(tokens) >= n_ctx * n_chunks, "not enough tokens"

    stats = Stats()
    for c in range(n_chunks):
        chunk = tokens[c * n_ctx : (c + 1) * n_ctx].copy()
        chunk[0] = bos
        forward(w, hp, chunk, stats, process_output)

    got = {name: (ncall, sums.astype(np.float64)) for name, (ncall, sums) in read_legacy_entries(dat).items()}
    result = {
        "entries": {},
        "missing": sorted(set(stats.sum) - set(got)),
        "extra": sorted(set(got) - set(stats.sum)),
    }
    bad = bool(result["missing"] or result["extra"])
    for name in sorted(set(stats.sum) & set(got)):
        ncall, sums = got[name]
        mean = stats.sum[name] / stats.rows[name]
        if len(sums) != len(mean):
            result["entries"][name] = {"ncall": ncall, "error": f"{len(sums)} values, want {len(mean)}"}
            bad = True
            continue
        rel = float(np.max(np.abs(sums / ncall - mean) / mean))
        result["entries"][name] = {"ncall": ncall, "max_rel_err": rel}
        bad |= not rel <= TOL
    print(json.dumps(result, indent=1))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
