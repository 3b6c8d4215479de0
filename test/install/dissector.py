#!/usr/bin/env python3
"""dissector.py - the Wireshark dissector (tools/wireshark/qsteer.lua) decodes QRP and
the agents' response datagrams as docs/wire.md and agent_wire.h say (suite 'install').

usage: dissector.py QSTEER_PCAP CONFIG TRACE LUA

1. qsteer-pcap gen writes requests, continuations, cancels, reports and every
   malformed kind from the bundled trace; this script writes a second pcap of
   response datagrams (and QRP on ports the dissector finds by heuristic) with
   struct, from agent_wire.h's layout.
2. tshark with the dissector prints every field of every frame.
3. An independent decoder here (struct, from docs/wire.md and agent_wire.h)
   reads the same pcaps; every frame's fields must be equal.
Exit 77 when tshark is not installed.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

QRP_FIELDS = ["magic", "version", "type", "flags", "tenant", "request_id", "prompt_tokens",
              "max_new_tokens", "prefix_hash", "priority", "slo_class", "hdr_len"]
REPORT_FIELDS = ["backend_id", "flags", "waiting", "running", "kv_used", "kv_total",
                 "decode_tps", "ttft_p99_us", "prefill_pending", "received", "completed",
                 "sent_ns"]
QRA_FIELDS = ["magic", "version", "kind", "backend_id", "flags", "request_id", "tokens",
              "preemptions", "recv_ns", "first_ns", "event_ns"]
COLUMNS = (["qrp." + f for f in QRP_FIELDS] + ["qrp.error"] +
           ["qrp.report." + f for f in REPORT_FIELDS] + ["qrp.report.draining"] +
           ["qra." + f for f in QRA_FIELDS] + ["qra.error"])
STRINGS = {"qrp.error", "qra.error"}
BOOLS = {"qrp.report.draining"}
PORTS = (7788, 7789)


# ---- pcap ------------------------------------------------------------------------

def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic in (0xa1b2c3d4, 0xa1b23c4d):
        e = "<"
    elif magic in (0xd4c3b2a1, 0x4d3cb2a1):
        e = ">"
    else:
        raise SystemExit("%s: not a pcap file" % path)
    linktype = struct.unpack_from(e + "I", data, 20)[0]
    if linktype != 1:
        raise SystemExit("%s: link type %d, expected Ethernet" % (path, linktype))
    off, frames = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(e + "IIII", data, off)
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(fr), len(fr)))
            f.write(fr)


def ip4_csum(h):
    s = sum(struct.unpack("!%dH" % (len(h) // 2), h))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def udp4_frame(src, sport, dst, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack("!H", ip4_csum(ip)) + ip[12:]
    eth = bytes.fromhex("020000000100" "020000000200") + struct.pack("!H", 0x0800)
    return eth + ip + udp


# ---- the reference decoder ---------------------------------------------------------

def udp_payload(fr):
    """(sport, dport, payload) of a frame Wireshark decodes up to UDP, else None."""
    if len(fr) < 14:
        return None
    et, off = struct.unpack_from("!H", fr, 12)[0], 14
    while et in (0x8100, 0x88a8):
        if len(fr) < off + 4:
            return None
        et, off = struct.unpack_from("!H", fr, off + 2)[0], off + 4
    if et == 0x0800:
        if len(fr) < off + 20 or fr[off] >> 4 != 4 or fr[off] & 15 < 5:
            return None
        ihl = (fr[off] & 15) * 4
        tot, frag = struct.unpack_from("!H", fr, off + 2)[0], struct.unpack_from("!H", fr, off + 6)[0]
        if frag & 0x3fff or fr[off + 9] != 17 or tot < ihl + 8 or off + tot > len(fr):
            return None
        u, end = off + ihl, off + tot
    elif et == 0x86dd:
        if len(fr) < off + 48 or fr[off + 6] != 17:
            return None
        plen = struct.unpack_from("!H", fr, off + 4)[0]
        u, end = off + 40, off + 40 + plen
        if end > len(fr) or plen < 8:
            return None
    else:
        return None
    sport, dport, ulen = struct.unpack_from("!HHH", fr, u)
    if ulen < 8 or u + ulen > end:
        return None
    return sport, dport, fr[u + 8:u + ulen]


def decode_qrp(p):
    e = {"qrp.magic": struct.unpack_from("!H", p, 0)[0]}
    if len(p) < 32:
        e["qrp.error"] = "short"
        return e
    v = struct.unpack_from("!HBBHHQIIIBBH", p, 0)
    e.update(("qrp." + k, x) for k, x in zip(QRP_FIELDS, v))
    why = None
    if e["qrp.version"] != 1:
        why = "version"
    elif not 1 <= e["qrp.type"] <= 4:
        why = "type"
    elif e["qrp.hdr_len"] < 32 or e["qrp.hdr_len"] > len(p):
        why = "hdr-len"
    elif e["qrp.priority"] > 3 or e["qrp.slo_class"] > 3:
        why = "field"
    elif e["qrp.flags"] & ~(3 if e["qrp.type"] == 3 else 0x1d if e["qrp.type"] == 1 else 1):
        why = "field"  # bit 1, a tag after the report body, only on reports; bits
        # 2-4, the difficulty and its class, only on requests
    elif e["qrp.flags"] & 0x18 and not e["qrp.flags"] & 4:
        why = "field"  # difficulty class bits without their flag
    elif e["qrp.flags"] & 2 and e["qrp.hdr_len"] != 32:
        why = "field"
    if why:
        e["qrp.error"] = why
    elif e["qrp.type"] == 3:
        body = p[e["qrp.hdr_len"]:]
        if len(body) < 56 + (16 if e["qrp.flags"] & 2 else 0):
            e["qrp.error"] = "short"
        else:
            r = struct.unpack_from("!HHIIIIIIIQQQ", body, 0)
            e.update(("qrp.report." + k, x) for k, x in zip(REPORT_FIELDS, r))
            e["qrp.report.draining"] = r[1] & 1
            if r[1] & ~1:
                e["qrp.error"] = "field"
    return e


def decode_qra(p):
    e = {"qra.magic": struct.unpack_from("!H", p, 0)[0]}
    if len(p) < 48:
        e["qra.error"] = "short"
        return e
    v = struct.unpack_from("!HBBHHQIIQQQ", p, 0)
    e.update(("qra." + k, x) for k, x in zip(QRA_FIELDS, v))
    if e["qra.version"] != 1:
        e["qra.error"] = "version"
    elif not 1 <= e["qra.kind"] <= 5:
        e["qra.error"] = "type"
    elif e["qra.flags"]:
        e["qra.error"] = "field"
    return e


def expect(fr):
    """The fields the dissector must show for this frame (None: no opinion)."""
    u = udp_payload(fr)
    if u is None:
        return None
    sport, dport, p = u
    if sport in PORTS or dport in PORTS:
        if len(p) < 2:
            return {}
        magic = struct.unpack_from("!H", p, 0)[0]
        if magic == 0x5153:
            return decode_qrp(p)
        if magic == 0x5152:
            return decode_qra(p)
        return {}
    # the heuristic: a whole header with either magic and version 1
    if len(p) >= 32 and p[2] == 1 and p[:2] == b"QS":
        return decode_qrp(p)
    if len(p) >= 48 and p[2] == 1 and p[:2] == b"QR":
        return decode_qra(p)
    return {}


# ---- responses and heuristic cases, from agent_wire.h ------------------------------

def qra(kind, backend, rid, tokens, pre, recv, first, event, flags=0, version=1):
    return struct.pack("!HBBHHQIIQQQ", 0x5152, version, kind, backend, flags, rid, tokens, pre,
                       recv, first, event)


def qrp(typ, flags, tenant, rid, prompt, maxnew, phash, prio, slo, body=b""):
    return struct.pack("!HBBHHQIIIBBH", 0x5153, 1, typ, flags, tenant, rid, prompt, maxnew,
                       phash, prio, slo, 32) + body


def extra_frames():
    be, cl, svc = [10, 0, 1, 10], [192, 168, 0, 5], [10, 0, 0, 1]
    big = 0xfedcba9876543210
    report = struct.pack("!HHIIIIIIIQQQ", 12, 1, 200, 64, 4000, 4096, 5100, 81000, 7000,
                         2 ** 63 + 5, 2 ** 63 + 1, 123456789012345678)
    return [
        udp4_frame(be, 7788, cl, 40005, qra(1, 10, 1099511627777, 1, 0, 1000, 2000, 2000)),
        udp4_frame(be, 7788, cl, 40005, qra(2, 10, 1099511627777, 128, 2, 1000, 2000, 99000)),
        udp4_frame(be, 7788, cl, 40005, qra(3, 10, 1099511627778, 0, 0, 1500, 0, 1600)),
        # answers to a cancel: stopped after 17 tokens; not held
        udp4_frame(be, 7788, cl, 40005, qra(4, 10, 1099511627779, 17, 0, 1500, 1700, 2600)),
        udp4_frame(be, 7788, cl, 40005, qra(5, 10, 1099511627780, 0, 0, 0, 0, 2700)),
        udp4_frame(be, 45000, cl, 46000, qra(2, 11, big, 4096, 1, 2 ** 62, 2 ** 62 + 1, 2 ** 62 + 2)),
        udp4_frame(be, 7788, cl, 40005, qra(2, 10, 5, 1, 0, 1, 2, 3, flags=1)),
        udp4_frame(be, 7788, cl, 40005, qra(2, 10, 6, 1, 0, 1, 2, 3)[:40]),
        udp4_frame(be, 7788, cl, 40005, qra(9, 10, 7, 1, 0, 1, 2, 3)),
        udp4_frame(cl, 45001, be, 46001, qrp(1, 1, 3, big, 812, 256, 0xdeadbeef, 2, 1, b"prompt")),
        udp4_frame(be, 45002, svc, 7789, qrp(3, 0, 0, big, 0, 0, 0, 0, 0, report)),
        # authenticated reports (docs/wire.md): tagged; the tag cut short; the tag
        # flag on a request
        udp4_frame(be, 45002, svc, 7789, qrp(3, 3, 0, big, 0, 0, 0, 0, 0, report + bytes(range(16)))),
        udp4_frame(be, 45002, svc, 7789, qrp(3, 2, 0, big, 0, 0, 0, 0, 0, report + bytes(15))),
        udp4_frame(cl, 40005, svc, 7788, qrp(1, 3, 7, 43, 10, 10, 0, 0, 0)),
        udp4_frame(cl, 40005, svc, 7788, qrp(4, 1, 7, 42, 0, 0, 0, 3, 3)),
        # difficulty (docs/wire.md): class 3 carried; its bits without the flag; the
        # flag on a continuation
        udp4_frame(cl, 40005, svc, 7788, qrp(1, 0x1d, 7, 44, 10, 10, 0, 0, 1)),
        udp4_frame(cl, 40005, svc, 7788, qrp(1, 0x09, 7, 45, 10, 10, 0, 0, 1)),
        udp4_frame(cl, 40005, svc, 7788, qrp(2, 0x05, 7, 44, 0, 0, 0, 0, 1)),
    ]


# ---- tshark ------------------------------------------------------------------------

def tshark_fields(tshark, lua, pcap, home):
    cmd = [tshark, "-n", "-X", "lua_script:" + lua, "-r", pcap, "-T", "fields",
           "-E", "separator=/t", "-E", "occurrence=f", "-e", "frame.number"]
    for c in COLUMNS:
        cmd += ["-e", c]
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=300)
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0 or "Lua" in err or "lua" in err:
        raise SystemExit("FAIL: %s\n%s" % (" ".join(cmd), err))
    rows = []
    for line in p.stdout.decode().splitlines():
        cells = line.split("\t")
        rows.append(dict(zip(COLUMNS, cells[1:])))
    return rows


def norm(col, v):
    if v == "" or v is None:
        return None
    if col in STRINGS:
        return v
    if col in BOOLS:
        return 1 if v in ("1", "True", "true") else 0
    return int(v, 0)


def compare(name, frames, rows):
    if len(rows) != len(frames):
        raise SystemExit("FAIL %s: tshark printed %d frames, the file has %d" %
                         (name, len(rows), len(frames)))
    checked = skipped = bad = 0
    seen = {}
    for i, (fr, row) in enumerate(zip(frames, rows)):
        exp = expect(fr)
        if exp is None:
            skipped += 1
            continue
        checked += 1
        got = {c: norm(c, row.get(c, "")) for c in COLUMNS}
        want = {c: exp.get(c) for c in COLUMNS}
        if got != want:
            bad += 1
            if bad <= 5:
                diff = {c: (got[c], want[c]) for c in COLUMNS if got[c] != want[c]}
                print("FAIL %s frame %d: (tshark, reference) %s" % (name, i + 1, diff))
        for c in ("qrp.type", "qra.kind", "qrp.error", "qra.error"):
            if got[c] is not None:
                seen.setdefault(c, set()).add(got[c])
    print("%s: %d frames checked field by field, %d not QRP-decodable by either (no opinion)"
          % (name, checked, skipped))
    return bad, seen


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    pcap_tool, cfg, trace, lua = (os.path.abspath(a) for a in sys.argv[1:])
    tshark = shutil.which("tshark")
    if not tshark:
        print("SKIP: tshark is not installed (scripts/deps.sh installs it)")
        sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="qsteer-dissector.") as t:
        gen = os.path.join(t, "gen.pcap")
        subprocess.run([pcap_tool, "gen", "--config", cfg, "--trace", trace, "--limit", "300",
                        "--speedup", "200", "--malformed", "60", "--ipv6-pct", "20",
                        "--out", gen], check=True, stdout=subprocess.DEVNULL)
        extra = os.path.join(t, "extra.pcap")
        write_pcap(extra, extra_frames())
        bad = 0
        seen = {}
        for name, path in (("gen.pcap", gen), ("extra.pcap", extra)):
            b, s = compare(name, read_pcap(path), tshark_fields(tshark, lua, path, t))
            bad += b
            for k, v in s.items():
                seen.setdefault(k, set()).update(v)
        # every message type and kind, and every refusal the files hold, was decoded
        want = {"qrp.type": {1, 2, 3, 4}, "qra.kind": {1, 2, 3, 4, 5},
                "qrp.error": {"short", "version", "type", "hdr-len", "field"},
                "qra.error": {"short", "type", "field"}}
        for k, v in want.items():
            if not v <= seen.get(k, set()):
                print("FAIL: %s never showed %s" % (k, sorted(map(str, v - seen.get(k, set())))))
                bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
