"""Dump a SentencePiece model as seen by the reference `sentencepiece` library, as JSON.

Usage: spm_dump.py TOKENIZER_MODEL

Prints {"pieces": [[text, score_f32_bits, type], ...], "unk_id", "bos_id", "eos_id",
"pad_id", "tells_user_defined", "probe": {...}}. Scores are given as the bits of the f32
stored in the file so the comparison with llq's parser is exact. `probe` records normalizer / trainer behaviour observed by encoding,
for settings the processor API does not expose directly.
"""

import json
import struct
import sys

import sentencepiece


def piece_type(sp, i):
    # Checked in this order because the predicates are exclusive in a valid model.
    if sp.IsUnknown(i):
        return "unknown"
    if sp.IsControl(i):
        return "control"
    if sp.IsUnused(i):
        return "unused"
    if sp.IsByte(i):
        return "byte"
    # Some releases (0.2.x) have no IsUserDefined; there user-defined pieces
    # read as "normal" and "tells_user_defined" in the output is false.
    if hasattr(sp, "IsUserDefined") and sp.IsUserDefined(i):
        return "user_defined"
    return "normal"


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def main():
    sp = sentencepiece.SentencePieceProcessor(model_file=sys.argv[1])
    pieces = [
        [sp.IdToPiece(i), f32_bits(sp.GetScore(i)), piece_type(sp, i)]
        for i in range(sp.GetPieceSize())
    ]
    joined = "".join(sp.EncodeAsPieces("a  b"))
    probe = {
        # add_dummy_prefix: "a" encodes with a leading "▁".
        "dummy_prefix": sp.EncodeAsPieces("a")[0].startswith("\u2581"),
        # remove_extra_whitespaces: the double space collapses.
        "collapses_spaces": "\u2581\u2581" not in joined,
        # byte_fallback: a character outside the vocabulary becomes <0x..> pieces.
        "byte_pieces_for_unknown": any(
            p.startswith("<0x") for p in sp.EncodeAsPieces("\U0001fbf9")
        ),
    }
    out = {
        "pieces": pieces,
        "unk_id": sp.unk_id(),
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "pad_id": sp.pad_id(),
        "tells_user_defined": hasattr(sp, "IsUserDefined"),
        "probe": probe,
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
