#!/usr/bin/env python3
"""Rewrite a GGUF as a split set with gguf-py's own writer (GGUFWriter's split mode), as an
independent producer of split files for llq's reader.

Usage: split_write.py IN.gguf OUT_PREFIX MAX_TENSORS
Writes OUT_PREFIX-00001-of-0000K.gguf …; the key/values (except the stale split keys) and the
tensors of IN are copied as they are.
"""
import sys

import gguf


def main():
    src, prefix, max_tensors = sys.argv[1], sys.argv[2], int(sys.argv[3])
    reader = gguf.GGUFReader(src)
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    writer = gguf.GGUFWriter(prefix + ".gguf", arch=arch, split_max_tensors=max_tensors)
    for field in reader.fields.values():
        name = field.name
        if name.startswith("GGUF.") or name.startswith("split.") or name == gguf.Keys.General.ARCHITECTURE:
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub)
    for t in reader.tensors:
        writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
