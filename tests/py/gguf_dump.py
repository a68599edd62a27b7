#!/usr/bin/env python3
"""Print a JSON dump of a GGUF file as gguf-py's GGUFReader sees it.

Used by formats/tests/gguf_python.rs to compare llq's reader and writer with the reference
implementation. Output: {"version", "alignment", "data_offset",
"kv": [{"key", "type", "elem_type" (arrays only), "value"}],
"tensors": [{"name", "shape" (ggml order), "type" (ggml id), "offset" (relative to the data
section), "n_bytes", "sha256"}]}.
"""
import hashlib
import json
import sys

from gguf import GGUFReader, GGUFValueType

# GGUFReader exposes the header counts as pseudo-fields with this prefix.
HEADER_PREFIX = "GGUF."


def dump_kv(field):
    # parts: key length, key bytes, value type, then the value's parts.
    entry = {"key": field.name, "type": field.types[0].name}
    if field.types[0] == GGUFValueType.ARRAY:
        # types[-1] is missing for empty arrays, so read the element type from the file.
        entry["elem_type"] = GGUFValueType(int(field.parts[3][0])).name
    entry["value"] = field.contents()
    return entry


def dump_tensor(reader, tensor):
    data = reader.data[tensor.data_offset:tensor.data_offset + tensor.n_bytes]
    return {
        "name": tensor.name,
        "shape": [int(d) for d in tensor.shape],
        "type": int(tensor.tensor_type),
        "offset": int(tensor.data_offset) - int(reader.data_offset),
        "n_bytes": int(tensor.n_bytes),
        "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
    }


def main():
    reader = GGUFReader(sys.argv[1])
    version = reader.fields[HEADER_PREFIX + "version"].contents()
    kvs = [f for name, f in reader.fields.items() if not name.startswith(HEADER_PREFIX)]
    print(json.dumps({
        "version": version,
        "alignment": int(reader.alignment),
        "data_offset": int(reader.data_offset),
        "kv": [dump_kv(f) for f in kvs],
        "tensors": [dump_tensor(reader, t) for t in reader.tensors],
    }))


if __name__ == "__main__":
    main()
