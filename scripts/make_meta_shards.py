#!/usr/bin/env python3
"""Bench helper: turn a Hugging Face LLaMA folder (e.g. one written by
make_synthetic_checkpoint.py) into a Meta model-parallel checkpoint of N shards
(consolidated.NN.pth + params.json + tokenizer.model) with real torch.save, following Meta's
rules: wq wk wv w1 w3 output split on dim 0, wo w2 on dim 1, tok_embeddings on dim 1 (LLaMA 1/2),
norms replicated; Q/K rows put back from HF's rotate-half order into Meta's interleaved pairs.

Usage: make_meta_shards.py HF_DIR OUT_DIR [--shards 2]   (needs torch + safetensors; never
run by CI; the output is bench data and is never committed)
"""
import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

LAYER = {
    "self_attn.q_proj": ("attention.wq", 0),
    "self_attn.k_proj": ("attention.wk", 0),
    "self_attn.v_proj": ("attention.wv", 0),
    "self_attn.o_proj": ("attention.wo", 1),
    "mlp.gate_proj": ("feed_forward.w1", 0),
    "mlp.up_proj": ("feed_forward.w3", 0),
    "mlp.down_proj": ("feed_forward.w2", 1),
    "input_layernorm": ("attention_norm", None),
    "post_attention_layernorm": ("ffn_norm", None),
}
GLOBAL = {
    "model.embed_tokens.weight": ("tok_embeddings.weight", 1),
    "model.norm.weight": ("norm.weight", None),
    "lm_head.weight": ("output.weight", 0),
}


def to_meta_rows(w, heads):
    """HF rotate-half rows -> Meta interleaved rows, per head."""
    hd = w.shape[0] // heads
    return w.view(heads, 2, hd // 2, w.shape[1]).transpose(1, 2).reshape(w.shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--shards", type=int, default=2)
    a = ap.parse_args()
    cfg = json.loads((a.hf_dir / "config.json").read_text())
    heads, kv_heads = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    tensors = {}
    for f in sorted(a.hf_dir.glob("*.safetensors")):
        tensors.update(load_file(f))
    shards = [dict() for _ in range(a.shards)]
    for name, w in tensors.items():
        if name in GLOBAL:
            meta, axis = GLOBAL[name]
        else:
            _, _, layer, rest = name.split(".", 3)
            key = rest.rsplit(".", 1)[0]
            suffix, axis = LAYER[key]
            meta = f"layers.{layer}.{suffix}.weight"
            if key == "self_attn.q_proj":
                w = to_meta_rows(w, heads)
            elif key == "self_attn.k_proj":
                w = to_meta_rows(w, kv_heads)
        parts = [w] * a.shards if axis is None else torch.chunk(w, a.shards, dim=axis)
        for shard, part in zip(shards, parts):
            shard[meta] = part.clone()
    a.out_dir.mkdir(parents=True, exist_ok=True)
    for i, shard in enumerate(shards):
        torch.save(shard, a.out_dir / f"consolidated.{i:02d}.pth")
    params = {
        "dim": cfg["hidden_size"], "n_layers": cfg["num_hidden_layers"], "n_heads": heads,
        "n_kv_heads": kv_heads, "vocab_size": -1, "norm_eps": cfg.get("rms_norm_eps", 1e-5),
        "rope_theta": cfg.get("rope_theta", 10000.0),
        "multiple_of": 256,
    }
    # Meta derives the FFN width from dim and multiple_of; llq checks it against w1.
    derived = 256 * -(-int(2 * 4 * cfg["hidden_size"] / 3) // 256)
    if derived != cfg["intermediate_size"]:
        raise SystemExit(f"FFN {cfg['intermediate_size']} is not Meta's formula for dim "
                         f"{cfg['hidden_size']} with multiple_of 256 ({derived})")
    (a.out_dir / "params.json").write_text(json.dumps(params))
    shutil.copy(a.hf_dir / "tokenizer.model", a.out_dir / "tokenizer.model")


if __name__ == "__main__":
    main()
