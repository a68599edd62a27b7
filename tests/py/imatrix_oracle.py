#!/usr/bin/env python3
"""Check llq's imatrix-weighted quantization against ggml itself (tests/imatrix.rs).

Usage: imatrix_oracle.py IN_F32_GGUF OUT_GGUF IMATRIX_DAT

For every quantized tensor of OUT_GGUF, quantize the same tensor of IN_F32_GGUF (all F32) with
ggml's ggml_quantize_chunk (what llama-quantize calls), passing the per-column weights read from
the legacy imatrix file (sum / ncall, or the sum when ncall <= 0, as llama-quantize loads it;
no weights for tensors the file lacks), and compare the bytes. Prints a summary line; exits 1
listing the tensors whose bytes differ. ggml comes from ggml_oracle.load_ggml.
"""

import struct
import sys

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType

from ggml_oracle import load_ggml
from quants_oracle import ggml_quantize


def read_legacy_entries(path):
    """{name: (ncall, sums as f32)} of a legacy imatrix .dat file."""
    data = open(path, "rb").read()
    pos = 0

    def i32():
        nonlocal pos
        (v,) = struct.unpack_from("<i", data, pos)
        pos += 4
        return v

    entries = {}
    for _ in range(i32()):
        n = i32()
        name = data[pos : pos + n].decode()
        pos += n
        ncall, nval = i32(), i32()
        entries[name] = (ncall, np.frombuffer(data, dtype="<f4", count=nval, offset=pos).astype(np.float32))
        pos += 4 * nval
    return entries


def read_legacy_imatrix(path):
    """{name: per-column weights} as llama-quantize loads them: sums / ncall (or the sums when
    ncall <= 0)."""
    return {
        name: sums / np.float32(ncall) if ncall > 0 else sums
        for name, (ncall, sums) in read_legacy_entries(path).items()
    }


def main():
    src, out, imat = sys.argv[1:4]
    entries = read_legacy_imatrix(imat)
    lib = load_ggml()
    inp = {t.name: t for t in GGUFReader(src).tensors}
    checked = weighted = differs_from_plain = 0
    bad = []
    for t in GGUFReader(out).tensors:
        qtype = GGMLQuantizationType(int(t.tensor_type))
        if qtype in (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16):
            continue
        src_t = inp[t.name]
        assert src_t.tensor_type == GGMLQuantizationType.F32, t.name
        n_per_row = int(src_t.shape[0])
        rows = np.asarray(src_t.data, dtype=np.float32).reshape(-1, n_per_row)
        weights = entries.get(t.name)
        want = ggml_quantize(lib, qtype, rows, weights)
        got = np.asarray(t.data).view(np.uint8).reshape(-1)
        checked += 1
        if weights is not None:
            weighted += 1
            if not np.array_equal(want, ggml_quantize(lib, qtype, rows, None)):
                differs_from_plain += 1
        if not np.array_equal(want, got):
            bad.append(f"{t.name} ({qtype.name})")
    print(f"checked={checked} weighted={weighted} differs_from_plain={differs_from_plain}")
    if bad:
        print("bytes differ from ggml: " + ", ".join(bad), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
