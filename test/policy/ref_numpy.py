#!/usr/bin/python3
# ref_numpy.py - an independent reference for the golden vectors, outside C.
#
# Parses every golden .q8 file from the byte layout in include/qsteer/q8.h (never
# calls the C library), verifies its CRC32C and content id, runs the network with
# numpy int64 arithmetic as DESIGN.md 3.1 defines it, and compares with the
# committed expected outputs (.out). Any mismatch fails loudly with the first
# differing row. Usage: ref_numpy.py GOLDEN_DIR. Exit 77 (meson: skipped) when
# numpy is missing.
import os
import struct
import sys

from q8sums import crc32c, fnv1a64

try:
    import numpy as np
except ImportError:
    print("numpy not available: skipped")
    sys.exit(77)

NAMES = ["router_v1", "batch_cls", "raw_odd", "raw_deep"]
HDR = 96
SCHEMAS = {1: 16, 2: 16, 0x7E570000: 0}  # schema id -> inputs (0: any)


def fail(name, text):
    print("FAIL %s: %s" % (name, text))
    sys.exit(1)


def parse_q8(name, b):
    if b[0:4] != b"QSQ8":
        fail(name, "bad magic")
    version, kind, schema, file_size, hdr_size, n_layers, n_actions, flags = \
        struct.unpack_from("<HHIIHHHH", b, 4)
    created, content_id = struct.unpack_from("<QQ", b, 24)
    if version != 1 or hdr_size != HDR or flags != 0 or any(b[72:96]):
        fail(name, "bad header fields")
    if kind not in (1, 2) or schema not in SCHEMAS or not 1 <= n_layers <= 8:
        fail(name, "kind %d schema %#x layers %d" % (kind, schema, n_layers))
    if file_size != len(b):
        fail(name, "header says %d bytes, file has %d" % (file_size, len(b)))
    crc = struct.unpack_from("<I", b, file_size - 4)[0]
    if crc != crc32c(b[:file_size - 4]):
        fail(name, "CRC32C mismatch")
    if content_id != fnv1a64(b[HDR:file_size - 4]):
        fail(name, "content id mismatch")
    shapes = [struct.unpack_from("<HHI", b, HDR + 8 * l) for l in range(n_layers)]
    off = HDR + 8 * n_layers
    layers = []
    for l, (n_in, n_out, rsv) in enumerate(shapes):
        if rsv or not 1 <= n_in <= 256 or not 1 <= n_out <= 256:
            fail(name, "layer %d table entry" % (l + 1))
        if l and n_in != shapes[l - 1][1]:
            fail(name, "layer %d does not chain" % (l + 1))
        nw = n_in * n_out
        w = np.frombuffer(b, np.int8, nw, off).astype(np.int64).reshape(n_out, n_in)
        if (w == -128).any():
            fail(name, "weight -128")
        off += (nw + 3) & ~3
        bias = np.frombuffer(b, "<i4", n_out, off).astype(np.int64)
        off += 4 * n_out
        m = s = None
        if l + 1 < n_layers:
            m = np.frombuffer(b, "<i4", n_out, off).astype(np.int64)
            off += 4 * n_out
            s = np.frombuffer(b, np.uint8, n_out, off).astype(np.int64)
            off += (n_out + 3) & ~3
            if (m <= 0).any() or (s < 1).any() or (s > 62).any():
                fail(name, "layer %d M/S out of range" % (l + 1))
        layers.append((w, bias, m, s))
    if SCHEMAS[schema] and shapes[0][0] != SCHEMAS[schema]:
        fail(name, "schema %#x needs %d inputs" % (schema, SCHEMAS[schema]))
    if kind == 1 and (shapes[-1][1] != 1 or n_actions):
        fail(name, "scorer shape")
    if kind == 2 and n_actions != shapes[-1][1]:
        fail(name, "classifier action count")
    off += 16 * n_actions
    if off + 4 != file_size:
        fail(name, "layers take %d bytes, file has %d" % (off + 4, file_size))
    return kind, layers


def forward(layers, x):
    a = x.astype(np.int64)
    for w, bias, m, s in layers:
        acc = a @ w.T + bias  # exact: |acc| < 2^29
        if np.abs(acc).max() >= 2**31:
            raise AssertionError("accumulator leaves int32")
        if m is None:
            return acc
        # (acc * M + 2^(S-1)) >> S, arithmetic shift; |acc * M| < 2^62 fits int64
        a = np.clip((acc * m + (np.int64(1) << (s - 1))) >> s, 0, 127)
    return a


def read_matrix(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rows.append([int(v) for v in line.split()])
    return np.array(rows, dtype=np.int64)


def main():
    d = sys.argv[1]
    extra = sorted(set(f[:-3] for f in os.listdir(d) if f.endswith(".q8")) - set(NAMES))
    if extra:
        fail(d, "golden policies not checked here: %s" % extra)
    total = 0
    for name in NAMES:
        with open(os.path.join(d, name + ".q8"), "rb") as f:
            kind, layers = parse_q8(name, f.read())
        x = read_matrix(os.path.join(d, name + ".in"))
        want = read_matrix(os.path.join(d, name + ".out"))
        if x.shape[1] != layers[0][0].shape[1] or (x < 0).any() or (x > 127).any():
            fail(name, "inputs do not fit the policy")
        got = forward(layers, x)
        if got.shape != want.shape:
            fail(name, "output shape %s, expected %s" % (got.shape, want.shape))
        bad = np.argwhere(got != want)
        if len(bad):
            r = bad[0][0]
            fail(name, "%d mismatches; first at row %d: numpy %s, golden %s"
                 % (len(bad), r, got[r].tolist(), want[r].tolist()))
        total += x.shape[0]
        print("ok %-10s kind %d, %d layers, %d rows" % (name, kind, len(layers), x.shape[0]))
    print("numpy reference agrees on all %d rows of %d policies" % (total, len(NAMES)))


main()
