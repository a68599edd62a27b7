#!/usr/bin/env python3
"""Parse an SVG as XML (Python's own parser, independent of the writer) and print JSON:
{"root": tag, "circles": n, "texts": [text contents]}.

Usage: svg_summary.py FILE.svg
"""
import json
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def main():
    root = ET.parse(sys.argv[1]).getroot()
    print(json.dumps({
        "root": root.tag,
        "circles": sum(1 for _ in root.iter(NS + "circle")),
        "texts": [(t.text or "").strip() for t in root.iter(NS + "text")],
    }))


if __name__ == "__main__":
    main()
