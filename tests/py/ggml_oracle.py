#!/usr/bin/env python3
"""Reference encoder/decoder of ggml's searched types, for llq's tests (the K-quants and the
i-quants: kernels/tests/suite/{kquant,iquant}).

    ggml_oracle.py probe
        Print the ggml library that `quantize` would use; exit 3 (reason on stderr) if none.
    ggml_oracle.py quantize TYPE N_PER_ROW IN OUT [IMATRIX]
        Quantize the little-endian f32 rows in IN (a whole number of rows of N_PER_ROW) with
        ggml itself: ggml_quantize_chunk (what llama-quantize calls), or quantize_row_q8_K_ref
        for Q8_K. IMATRIX holds N_PER_ROW f32 importance weights shared by every row.
    ggml_oracle.py dequantize TYPE IN OUT
        Decode blocks with gguf-py (gguf.quants.dequantize), or with ggml's dequantize_row_q8_K
        for Q8_K, which gguf-py does not implement.

TYPE is a ggml type name (Q2_K ... Q6_K, Q8_K, IQ4_NL, IQ4_XS); ids and block sizes are
gguf-py's. ggml comes from the llama_cpp package (llama-cpp-python bundles libggml-base.so)
unless LLQ_GGML_LIB names the library file.
"""

import ctypes
import importlib.util
import os
import sys
from array import array

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType


def type_info(name):
    """ggml's id, elements per block and bytes per block of a type."""
    ty = GGMLQuantizationType[name]
    block, size = GGML_QUANT_SIZES[ty]
    return int(ty), block, size


class Unavailable(Exception):
    pass


def ggml_lib_path():
    path = os.environ.get("LLQ_GGML_LIB")
    if path:
        return path
    # find_spec locates the package without importing it (which would load all of llama.cpp).
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("python package llama_cpp is not installed in %s" % sys.executable)
    for pkg in spec.submodule_search_locations:
        path = os.path.join(pkg, "lib", "libggml-base.so")
        if os.path.exists(path):
            return path
    raise Unavailable("llama_cpp has no lib/libggml-base.so")


def load_ggml():
    path = ggml_lib_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise Unavailable("cannot load %s: %s" % (path, e))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
        ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
    ]
    for name in ("quantize_row_q8_K_ref", "dequantize_row_q8_K"):
        getattr(lib, name).restype = None
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return lib


def read_f32(path):
    a = array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return a


def quantize(ty, n_per_row, src_path, out_path, imatrix_path=None):
    lib = load_ggml()
    type_id, block, block_bytes = type_info(ty)
    src = read_f32(src_path)
    n = len(src)
    assert n_per_row % block == 0 and n % n_per_row == 0, "rows are not whole blocks"
    # Zeroed output: ggml leaves Q8_K's sums of an all-zero block unwritten.
    dst = ctypes.create_string_buffer(n // block * block_bytes)
    src_buf = (ctypes.c_float * n).from_buffer(src)
    if ty == "Q8_K":
        assert imatrix_path is None, "Q8_K takes no importance"
        lib.quantize_row_q8_K_ref(src_buf, dst, n)
    else:
        imatrix = None
        if imatrix_path is not None:
            w = read_f32(imatrix_path)
            assert len(w) == n_per_row, "imatrix length"
            imatrix = (ctypes.c_float * n_per_row).from_buffer(w)
        written = lib.ggml_quantize_chunk(type_id, src_buf, dst, 0, n // n_per_row, n_per_row, imatrix)
        assert written == len(dst.raw), (written, len(dst.raw))
    with open(out_path, "wb") as f:
        f.write(dst.raw)


def dequantize(ty, src_path, out_path):
    with open(src_path, "rb") as f:
        data = f.read()
    _, block, block_bytes = type_info(ty)
    assert len(data) % block_bytes == 0, "not whole blocks"
    if ty == "Q8_K":
        lib = load_ggml()
        n = len(data) // block_bytes * block
        out = (ctypes.c_float * n)()
        lib.dequantize_row_q8_K(ctypes.c_char_p(data), out, n)
        result = bytes(out)
    else:
        import numpy as np
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize as gguf_dequantize

        blocks = np.frombuffer(data, dtype=np.uint8)
        result = gguf_dequantize(blocks, GGMLQuantizationType[ty]).astype("<f4").tobytes()
    with open(out_path, "wb") as f:
        f.write(result)


def main(argv):
    try:
        if argv[:1] == ["probe"]:
            load_ggml()
            print(ggml_lib_path())
        elif argv[:1] == ["quantize"] and len(argv) in (5, 6):
            quantize(argv[1], int(argv[2]), argv[3], argv[4], argv[5] if len(argv) == 6 else None)
        elif argv[:1] == ["dequantize"] and len(argv) == 4:
            dequantize(argv[1], argv[2], argv[3])
        else:
            sys.exit(__doc__)
    except Unavailable as e:
        print(e, file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main(sys.argv[1:])
