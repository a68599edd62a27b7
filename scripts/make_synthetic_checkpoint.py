#!/usr/bin/env python3
"""Write a synthetic Hugging Face-style LLaMA checkpoint for benchmarks (numpy only).

The weights are random (normal, std 0.02; norms near 1), so the model is useless for text but
has the exact tensor names, shapes, dtype (BF16) and file layout of a real HF LLaMA folder:
config.json, sharded *.safetensors with model.safetensors.index.json, tokenizer.model.
Converters do the same work on it as on a real model, which is all a throughput and memory
benchmark needs, and no multi-GB download is involved.

numpy has no bfloat16 and we avoid torch on purpose (the bench must not depend on it), so the
safetensors header is written by hand and BF16 is the upper 16 bits of float32 after
round-to-nearest-even, the same rounding torch uses for .to(torch.bfloat16).

Usage: make_synthetic_checkpoint.py OUT_DIR [--shape default|small] [--dim ...] [...]
"""

import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

# TinyLlama-like widths; fewer layers so the default folder is ~1.1 GB of BF16.
SHAPES = {
    "default": dict(dim=2048, layers=10, heads=32, kv_heads=4, ffn=5632, vocab=32000),
    # ~100 MB: shows whether peak RSS follows model size.
    "small": dict(dim=512, layers=6, heads=8, kv_heads=4, ffn=1408, vocab=32000),
}


def tensor_list(s):
    """(name, shape) in HF order, as transformers' LlamaForCausalLM saves them."""
    dim, ffn, vocab = s["dim"], s["ffn"], s["vocab"]
    kv_dim = dim // s["heads"] * s["kv_heads"]
    out = [("model.embed_tokens.weight", (vocab, dim))]
    for i in range(s["layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", (dim, dim)),
            (p + "self_attn.k_proj.weight", (kv_dim, dim)),
            (p + "self_attn.v_proj.weight", (kv_dim, dim)),
            (p + "self_attn.o_proj.weight", (dim, dim)),
            (p + "mlp.gate_proj.weight", (ffn, dim)),
            (p + "mlp.up_proj.weight", (ffn, dim)),
            (p + "mlp.down_proj.weight", (dim, ffn)),
            (p + "input_layernorm.weight", (dim,)),
            (p + "post_attention_layernorm.weight", (dim,)),
        ]
    out += [("model.norm.weight", (dim,)), ("lm_head.weight", (vocab, dim))]
    return out


def to_bf16_bytes(x):
    """float32 array -> BF16 little-endian bytes, round-to-nearest-even (no NaNs here)."""
    u = x.astype("<f4", copy=False).view("<u4")
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return rounded.astype("<u2").tobytes()


def make_tensor(rng, name, shape):
    if name.endswith("norm.weight"):
        # RMSNorm gains sit around 1 in trained models.
        return (1.0 + 0.05 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)


def write_shard(path, tensors, rng):
    """One safetensors file: u64 header length, JSON header, then the raw tensor bytes."""
    header, offset = {}, 0
    for name, shape in tensors:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape in tensors:
            f.write(to_bf16_bytes(make_tensor(rng, name, shape)))
    return offset


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="default")
    for k in SHAPES["default"]:
        ap.add_argument("--" + k.replace("_", "-"), type=int, dest=k)
    ap.add_argument("--shard-mb", type=int, default=600, help="max shard size (MB)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--tokenizer", help="tokenizer.model to copy (default: $LLQ_SHARED/...)")
    a = ap.parse_args()

    s = dict(SHAPES[a.shape])
    for k in s:
        if getattr(a, k) is not None:
            s[k] = getattr(a, k)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shared = os.environ.get("LLQ_SHARED", os.path.join(repo, "..", "shared"))
    tok = a.tokenizer or os.path.join(shared, "tokenizers", "llama2", "tokenizer.model")
    if not os.path.isfile(tok):
        sys.exit(f"tokenizer not found: {tok} (set LLQ_SHARED or --tokenizer)")

    os.makedirs(a.out, exist_ok=True)
    # Group tensors into shards of at most --shard-mb, like HF's max_shard_size.
    shards, cur, cur_bytes = [], [], 0
    for name, shape in tensor_list(s):
        n = int(np.prod(shape)) * 2
        if cur and cur_bytes + n > a.shard_mb * 1_000_000:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append((name, shape))
        cur_bytes += n
    shards.append(cur)

    rng = np.random.default_rng(a.seed)
    weight_map, total = {}, 0
    for i, tensors in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        total += write_shard(os.path.join(a.out, fname), tensors, rng)
        weight_map.update({name: fname for name, _ in tensors})
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)

    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": s["dim"],
        "intermediate_size": s["ffn"],
        "num_attention_heads": s["heads"],
        "num_key_value_heads": s["kv_heads"],
        "num_hidden_layers": s["layers"],
        "vocab_size": s["vocab"],
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "bfloat16",
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    shutil.copyfile(tok, os.path.join(a.out, "tokenizer.model"))
    print(f"{a.out}: {len(shards)} shard(s), {total / 1e6:.0f} MB BF16, shape {s}")


if __name__ == "__main__":
    main()
