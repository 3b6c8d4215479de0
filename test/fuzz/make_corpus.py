#!/usr/bin/python3
# make_corpus.py - writes the seed corpus corpus_q8/ for fuzz_q8_load.c: small valid
# .q8 files (ok-*) and broken ones (bad-*). The replay test (replay_q8.c) requires
# ok-* to load and bad-* to be refused, so the names are part of the test.
# Usage: make_corpus.py GOLDEN_DIR OUT_DIR   (normally test/policy/golden corpus_q8)
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "policy"))
from q8sums import crc32c, fnv1a64  # noqa: E402


def refix(b):
    b[32:40] = struct.pack("<Q", fnv1a64(b[96:-4]))
    b[-4:] = struct.pack("<I", crc32c(b[:-4]))
    return b


def tiny():
    # raw-schema scorer 2 -> 3 -> 1
    h = bytearray(96)
    h[0:4] = b"QSQ8"
    body = struct.pack("<HHI", 2, 3, 0) + struct.pack("<HHI", 3, 1, 0)
    body += bytes([5, 0x81, 127, 3, 0, 0x7F]) + bytes(2)        # W0 3x2, pad to 8
    body += struct.pack("<3i", 10, -10, 1 << 28)                 # bias0
    body += struct.pack("<3i", 1, 1 << 20, 0x7FFFFFFF)           # M0
    body += bytes([1, 20, 62, 0])                                # S0 + pad
    body += bytes([1, 2, 0x81, 0])                               # W1 1x3, pad
    body += struct.pack("<i", -7)                                # bias1
    size = 96 + len(body) + 4
    struct.pack_into("<HHIIHHHHQ", h, 4, 1, 1, 0x7E570000, size, 96, 2, 0, 0, 1700000000)
    h[40:44] = b"tiny"
    return refix(bytearray(h + body + bytes(4)))


def main():
    gold, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    files = {}
    for name in ("router_v1", "batch_cls", "raw_odd"):
        with open(os.path.join(gold, name + ".q8"), "rb") as f:
            files["ok-" + name] = bytearray(f.read())
    files["ok-tiny"] = tiny()
    t = bytearray(files["ok-tiny"])
    files["ok-tiny-sigtrailer"] = t + b"QSIG" + struct.pack("<I", 1) + bytes(64)
    files["bad-truncated"] = files["ok-batch_cls"][:500]
    files["bad-header-only"] = files["ok-tiny"][:96]
    b = bytearray(files["ok-tiny"]); b[-1] ^= 1; files["bad-crc"] = b
    b = bytearray(files["ok-tiny"]); b[0] = ord("X"); files["bad-magic"] = b
    b = bytearray(files["ok-tiny"]); b[96 + 16] = 0x80; files["bad-weight"] = refix(b)
    b = bytearray(files["ok-tiny"]); b[96 + 2] = 4; files["bad-chain"] = refix(b)
    b = bytearray(files["ok-tiny"]); struct.pack_into("<H", b, 18, 65535); files["bad-layers"] = refix(b)
    b = bytearray(files["ok-tiny"]); struct.pack_into("<I", b, 12, 0xFFFFFFFF); files["bad-size"] = refix(b)
    files["bad-trailing"] = files["ok-tiny"] + b"\0"
    for name, data in files.items():
        with open(os.path.join(out, name + ".q8"), "wb") as f:
            f.write(data)


main()
