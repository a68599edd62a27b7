#!/usr/bin/env python3
"""Quantize one GGUF to several file types with llama.cpp's own quantizer (llama-quantize's
library entry point `llama_model_quantize`, as bundled by llama-cpp-python), for
tests/quant_parity.rs.

Usage: llama_quantize.py IN.gguf OUT_DIR NTHREAD TYPE... [--dump DIR]

TYPE is a file-type name (F16, BF16, Q4_0, ..., Q4_K_M, Q6_K, IQ4_NL, IQ4_XS). Each is written to
OUT_DIR/TYPE.gguf. Prints one JSON object: {TYPE: {"rc": return code, "stderr_tail": str,
"version", "alignment", "data_offset", "file_size", "tensors": [...], "kv": [...]}}, tensors
and kv as gguf_dump.py dumps them (all but rc and stderr_tail are absent when llama.cpp refused
the type). With --dump DIR, each entry also has "other": the same fields of DIR/TYPE.gguf (the
same file type written by another tool), so one process reads both sides with gguf-py, and
"differences": llama_cpp_layout.differences(DIR/TYPE.gguf, OUT_DIR/TYPE.gguf), every way the
two files differ beyond llama.cpp's tensor and key order ([] when none).
"""

import json
import os
import sys
import tempfile

import llama_cpp
from gguf import GGUFReader

import gguf_dump
import llama_cpp_layout


def ftype(name):
    """llama.cpp's enum llama_ftype value of a file-type name, from the bindings' constants."""
    if name == "F32":
        return llama_cpp.LLAMA_FTYPE_ALL_F32
    return getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + name)


def quantize(src, dst, file_type, nthread):
    """Run llama_model_quantize with llama.cpp's log (fd 2) captured; returns (rc, log tail)."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = file_type
    params.nthread = nthread
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    return rc, "\n".join(text.strip().splitlines()[-5:])


def dump(path):
    reader = GGUFReader(path)
    return {
        "version": reader.fields[gguf_dump.HEADER_PREFIX + "version"].contents(),
        "alignment": int(reader.alignment),
        "data_offset": int(reader.data_offset),
        "file_size": os.path.getsize(path),
        "tensors": [gguf_dump.dump_tensor(reader, t) for t in reader.tensors],
        "kv": [gguf_dump.dump_kv(f) for n, f in reader.fields.items()
               if not n.startswith(gguf_dump.HEADER_PREFIX)],
    }


def main():
    args = sys.argv[1:]
    other = None
    if "--dump" in args:
        i = args.index("--dump")
        other = args[i + 1]
        del args[i:i + 2]
    if len(args) < 4:
        sys.exit(__doc__)
    src, out_dir, nthread = args[0], args[1], int(args[2])
    result = {}
    for name in args[3:]:
        dst = os.path.join(out_dir, name + ".gguf")
        rc, tail = quantize(src, dst, ftype(name), nthread)
        entry = {"rc": rc, "stderr_tail": tail}
        if rc == 0:
            entry.update(dump(dst))
        if other is not None:
            ours = os.path.join(other, name + ".gguf")
            entry["other"] = dump(ours)
            if rc == 0:
                entry["differences"] = llama_cpp_layout.differences(ours, dst)
        result[name] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
