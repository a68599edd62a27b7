#!/usr/bin/env python3
"""Print the sha256 hex digest of each file given, one per line (Rust's std has no hasher)."""
import hashlib
import sys

for path in sys.argv[1:]:
    with open(path, "rb") as f:
        print(hashlib.sha256(f.read()).hexdigest())
