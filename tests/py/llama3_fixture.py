"""Write a tiny Llama-3-shaped Hugging Face folder with random weights (numpy only, no torch).

Usage: llama3_fixture.py OUT_DIR TOKENIZER_MODEL [SEED]

The vocabulary is the tiktoken file's ranks + Meta's 256 special tokens (128256 for the real
Llama 3 tokenizer); dim 64, 2 layers, 4 heads (2 KV heads), FFN 128, rope_theta 500000 and
Llama 3.1 rope scaling (factor 8). Weights are F32 safetensors; tokenizer.model is copied.
"""

import json
import shutil
import struct
import sys

import numpy as np


def write_safetensors(path, tensors):
    header = {}
    offset = 0
    blobs = []
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    out, tok = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with open(tok, "rb") as f:
        n_ranks = sum(1 for line in f if line.strip())
    vocab = n_ranks + 256
    dim, layers, heads, kv_heads, ff = 64, 2, 4, 2, 128
    hd = dim // heads
    rng = np.random.default_rng(seed)
    t = {"model.embed_tokens.weight": rng.standard_normal((vocab, dim)) * 0.5}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(dim)
        t[p + "self_attn.q_proj.weight"] = rng.standard_normal((dim, dim)) / 8
        t[p + "self_attn.k_proj.weight"] = rng.standard_normal((kv_heads * hd, dim)) / 8
        t[p + "self_attn.v_proj.weight"] = rng.standard_normal((kv_heads * hd, dim)) / 8
        t[p + "self_attn.o_proj.weight"] = rng.standard_normal((dim, dim)) / 8
        t[p + "post_attention_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(dim)
        t[p + "mlp.gate_proj.weight"] = rng.standard_normal((ff, dim)) / 8
        t[p + "mlp.up_proj.weight"] = rng.standard_normal((ff, dim)) / 8
        t[p + "mlp.down_proj.weight"] = rng.standard_normal((dim, ff)) / 11
    t["model.norm.weight"] = 1 + 0.1 * rng.standard_normal(dim)
    t["lm_head.weight"] = rng.standard_normal((vocab, dim)) / 8
    import os
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), t)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": dim,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "intermediate_size": ff,
        "vocab_size": vocab,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "max_position_embeddings": 131072,
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
        "tie_word_embeddings": False,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "torch_dtype": "float32",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    shutil.copy(tok, os.path.join(out, "tokenizer.model"))


if __name__ == "__main__":
    main()
