#!/usr/bin/env python3
"""Time llama.cpp (through llama-cpp-python) on one GGUF the way llama-bench does: pp N and tg N.

llama-bench (tools/llama-bench/llama-bench.cpp) runs pp and tg as separate tests, each starting
from an empty KV cache: one warm-up run, then per repetition clear the memory and
  pp: decode N prompt tokens (BOS, then random ids) in batches of n_batch, synchronize;
  tg: decode N single tokens one after another (BOS, then random ids), synchronizing each.
It reports the mean; we report the best of --reps, like `llq bench`. Here a prompt of 512 with
n_batch 512 is one `llm.eval()` call, and `llm.reset()` empties the KV cache (eval() drops
every cell past n_tokens), which is the "fresh context" of each test. eval() also copies the
last token's logits out, as a real caller would; that is ~128 KB and negligible.

Usage: llama_bench.py MODEL.gguf [-p 512] [-n 128] [-r 2] [-t 2]  -> one JSON line on stdout
"""

import argparse
import json
import os
import random
import time

from llama_cpp import Llama


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("-p", "--pp", type=int, default=512)
    ap.add_argument("-n", "--tg", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=2)
    ap.add_argument("-t", "--threads", type=int, default=2)
    a = ap.parse_args()

    llm = Llama(
        model_path=a.model,
        n_ctx=max(1024, a.pp + a.tg + 8),
        n_batch=max(512, a.pp),
        n_ubatch=max(512, a.pp),
        n_threads=a.threads,
        n_threads_batch=a.threads,
        n_gpu_layers=0,
        use_mmap=True,
        verbose=False,
    )
    n_vocab = llm.n_vocab()
    bos = llm.token_bos()
    rng = random.Random(42)

    def prompt(n):
        return [bos] + [rng.randrange(n_vocab) for _ in range(n - 1)]

    def run_pp(n):
        llm.reset()
        toks = prompt(n)
        t = time.perf_counter()
        llm.eval(toks)
        return time.perf_counter() - t

    def run_tg(n):
        llm.reset()
        tok = bos
        t = time.perf_counter()
        for _ in range(n):
            llm.eval([tok])
            tok = rng.randrange(n_vocab)
        return time.perf_counter() - t

    # Warm-up as llama-bench does: one pp run and one generated token (pages the weights in).
    if a.pp:
        run_pp(a.pp)
    if a.tg:
        run_tg(1)
    best_pp = min(run_pp(a.pp) for _ in range(a.reps)) if a.pp else float("nan")
    best_tg = min(run_tg(a.tg) for _ in range(a.reps)) if a.tg else float("nan")
    import llama_cpp

    # The CPU features ggml was compiled with ("AVX2 = 1 | ..."): the peer's ISA for the record.
    info = llama_cpp.llama_print_system_info().decode()
    isa = [f.split("=")[0].split(":")[-1].strip() for f in info.split("|") if f.strip().endswith("= 1")]

    print(json.dumps({
        "model": a.model,
        "llama_cpp_python": llama_cpp.__version__,
        "isa": "+".join(isa),
        "threads": a.threads,
        "pp_tokens": a.pp,
        "pp_tok_s": a.pp / best_pp if a.pp else None,
        "tg_tokens": a.tg,
        "tg_tok_s": a.tg / best_tg if a.tg else None,
        "load1": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
