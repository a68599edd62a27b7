"""What a GGUF that llama.cpp's llama_model_quantize wrote shares with another tool's file of the
same type, and where the two may differ: the order of the tensors and of two metadata keys.

`differences(ours, theirs)` lists every difference between OURS (any writer) and THEIRS (written
by llama_model_quantize from the same input) except these two, which follow from how
llama_model_quantize writes (llama.cpp 0c1e570, src/llama-quant.cpp, src/llama-model-loader.h):

- Tensor order: it quantizes the input's tensors in the order of llama_model_loader's
  weights_map, a std::map ordered by weight_name_comparer: the layer number N of "blk.N."
  (-1 for tensors outside the blocks) first, then the name's bytes.
- Metadata order: it copies the input's keys (gguf_set_kv), then sets
  general.quantization_version and general.file_type; gguf_set_val_* removes a key and appends
  it, so those two come last, in that order.

Everything else must be equal: GGUF version, alignment, header size, file size, every key (its
type, element type and value), and every tensor's name, type, shape, size and data bytes. The
two orders are checked too, against the rules above. With `skip_key_prefix`, OURS's keys with
that prefix are left out (and THEIRS must have none): llama-quantize (the tool) records the
imatrix in quantize.imatrix.* keys through kv overrides, which llama_model_quantize called with
the imatrix data alone does not write; the header and file sizes then differ by those keys, so
only the size of the data section is compared.
"""

import hashlib
import os
import re

from gguf import GGUFReader

import gguf_dump

QUANTIZE_KEYS = ["general.quantization_version", "general.file_type"]


def llama_cpp_tensor_order(names):
    """`names` in llama_model_loader's weight_name_comparer order."""
    def key(name):
        m = re.match(r"blk\.(-?\d+)\.", name)
        return (int(m.group(1)) if m else -1, name.encode())
    return sorted(names, key=key)


def llama_cpp_key_order(keys):
    """`keys` (the input's metadata order) as llama_model_quantize writes them."""
    return [k for k in keys if k not in QUANTIZE_KEYS] + QUANTIZE_KEYS


def _read(path, skip_key_prefix):
    reader = GGUFReader(path)
    kv = [gguf_dump.dump_kv(f) for n, f in reader.fields.items()
          if not n.startswith(gguf_dump.HEADER_PREFIX)]
    skipped = [e for e in kv if skip_key_prefix and e["key"].startswith(skip_key_prefix)]
    kv = [e for e in kv if e not in skipped]
    tensors = []
    for t in reader.tensors:
        data = reader.data[t.data_offset:t.data_offset + t.n_bytes]
        tensors.append({
            "name": t.name,
            "shape": [int(d) for d in t.shape],
            "type": int(t.tensor_type),
            "n_bytes": int(t.n_bytes),
            "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
        })
    header = {
        "version": reader.fields[gguf_dump.HEADER_PREFIX + "version"].contents(),
        "alignment": int(reader.alignment),
        "data_offset": int(reader.data_offset),
        "file_size": os.path.getsize(path),
    }
    return header, kv, tensors, skipped


def differences(ours, theirs, skip_key_prefix=None):
    """Lines describing how OURS differs from THEIRS beyond the two orders; [] when none."""
    out = []
    h_a, kv_a, t_a, skipped = _read(ours, skip_key_prefix)
    h_b, kv_b, t_b, theirs_skipped = _read(theirs, skip_key_prefix)
    if theirs_skipped:
        out.append(f"llama.cpp wrote {[e['key'] for e in theirs_skipped]}")
    for field in ["version", "alignment"] + ([] if skipped else ["data_offset", "file_size"]):
        if h_a[field] != h_b[field]:
            out.append(f"{field}: {h_a[field]} vs llama.cpp's {h_b[field]}")
    data_a = h_a["file_size"] - h_a["data_offset"]
    data_b = h_b["file_size"] - h_b["data_offset"]
    if data_a != data_b:
        out.append(f"data section: {data_a} bytes vs llama.cpp's {data_b}")

    keys_a, keys_b = [e["key"] for e in kv_a], [e["key"] for e in kv_b]
    map_a, map_b = {e["key"]: e for e in kv_a}, {e["key"]: e for e in kv_b}
    for key in sorted(set(keys_a) | set(keys_b)):
        a, b = map_a.get(key), map_b.get(key)
        if a is None:
            out.append(f"metadata {key}: only in llama.cpp's file")
        elif b is None:
            out.append(f"metadata {key}: only in ours")
        elif a != b:
            out.append(f"metadata {key}: {str(a)[:120]} vs llama.cpp's {str(b)[:120]}")
    if set(keys_a) == set(keys_b) and keys_b != llama_cpp_key_order(keys_a):
        out.append(f"metadata order: llama.cpp's {keys_b}, expected {llama_cpp_key_order(keys_a)}")

    names_a, names_b = [t["name"] for t in t_a], [t["name"] for t in t_b]
    by_name = {t["name"]: t for t in t_b}
    if sorted(names_a) != sorted(names_b):
        out.append(f"tensor names: {sorted(names_a)} vs llama.cpp's {sorted(names_b)}")
    for t in t_a:
        u = by_name.get(t["name"])
        if u is None:
            continue
        for field in ["type", "shape", "n_bytes", "sha256"]:
            if t[field] != u[field]:
                out.append(f"tensor {t['name']}: {field} {t[field]} vs llama.cpp's {u[field]}")
                break
    if sorted(names_a) == sorted(names_b) and names_b != llama_cpp_tensor_order(names_a):
        out.append(f"tensor order: llama.cpp's {names_b}, expected "
                   f"{llama_cpp_tensor_order(names_a)}")
    return out
