"""Generate the small torch checkpoints the pth tests read (run with a Python that has torch).

Each NAME.pth is written by real torch.save; NAME.json beside it lists, per tensor in save order,
its dtype, shape and values as float64 so the Rust tests can check decoded bytes. The files are
committed because CI has no torch. Re-run: python make.py (from any directory).
"""

import json
import os
from collections import OrderedDict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}


def values(t):
    return [float(x) for x in t.detach().reshape(-1).to(torch.float64).tolist()]


def save(name, state, **kwargs):
    path = os.path.join(HERE, name + ".pth")
    torch.save(state, path, **kwargs)
    expected = [
        {"name": k, "dtype": DTYPES[v.dtype], "shape": list(v.shape), "values": values(v)}
        for k, v in state.items()
    ]
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump({"torch": torch.__version__, "tensors": expected}, f, indent=1)
    assert os.path.getsize(path) < 50_000, path


def main():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(5, 4, generator=g)

    # One tensor per float dtype, 2-D, 1-D and 0-d; default pickle protocol (2).
    save("dtypes", {
        "w.bf16": base.to(torch.bfloat16),
        "w.f16": base[:3].to(torch.float16),
        "norm.f32": torch.linspace(-1, 1, 7),
        "scalar": torch.tensor(2.5),
    })

    # Views share their base's whole storage: t[1] sits at offset 4, t[2:4] at offset 8.
    shared = torch.arange(20, dtype=torch.float32).reshape(5, 4).to(torch.bfloat16)
    save("shared", {"full": shared, "row1": shared[1], "rows2_3": shared[2:4]})

    # Protocol 4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL; an OrderedDict root and an
    # nn.Parameter (_rebuild_parameter).
    save("proto4", OrderedDict([
        ("a", base.to(torch.float16)),
        ("p", torch.nn.Parameter(base[0].clone())),
    ]), pickle_protocol=4)

    # A real state_dict(): an OrderedDict with a _metadata attribute (pickled with BUILD).
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.arange(6, dtype=torch.float32).reshape(2, 3))
        lin.bias.copy_(torch.tensor([0.5, -0.5]))
    save("module", lin.state_dict())

    # A transposed view: stride (1, 4), which the reader must refuse.
    torch.save({"t": base.t()}, os.path.join(HERE, "noncontig.pth"))

    # The pre-1.6 format: a bare pickle stream, refused with a re-save hint.
    torch.save({"a": base[0]}, os.path.join(HERE, "legacy.pth"),
               _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
