#!/bin/sh
# workers.sh - qsteer-dp with two worker lcores (three lcores mapped onto the
# host's CPUs with --lcores) on a two-queue net_pcap port. net_pcap has no RSS, so
# qsteer-pcap split does what RSS on IP+UDP does: it puts each client flow (UDP
# 4-tuple) on one queue. Checked (docs/dataplane.md "Several workers"): every
# packet received (per queue = per worker), the per-worker counters sum to the
# totals, rx = tx + consumed + drops, tx = frames written, per-packet drops exact,
# every output frame's checksums valid, and every continuation of a request went
# to the backend its request went to. Not checked: which backend each request got
# (the shared backend table is written by whichever worker gets a report, at a
# timing no reference reproduces).
# usage: workers.sh QSTEER_DP|none QSTEER_PCAP QSTEERCTL MKPOLICY CONFIG TRACE
set -eu
. "$(dirname "$0")/lib.sh"
dp_script_start workers "$@"
CTLS="$CTL --socket $T/dp.sock"
"$MKPOL" 1 a.q8 workers-a
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 4000 --speedup 200 --seed 5 \
	--malformed 190 --out in.pcap --manifest manifest.json
"$PCAP" split --in in.pcap --queues 2 --prefix q --config "$CFG"
# main lcore 0 and workers 1, 2 on however many CPUs there are (two here)
LAST=$(($(nproc) - 1))
DP_LCORES="--lcores 0@0,1@0,2@$LAST"
start_dp workers \
	"net_pcap0,rx_pcap=q0.pcap,rx_pcap=q1.pcap,tx_pcap=out0.pcap,tx_pcap=out1.pcap" "$T/dp.sock" \
	--config "$CFG" --policy a.q8 --stats-out stats.json
run_out "$(pcap_count in.pcap)"
stop_dp
grep -q "2 workers" dp.log || { cat dp.log; echo "FAIL: not two workers"; exit 1; }
python3 - "$CFG" <<'PY'
import json, struct, sys

def pcap(path):
    d = open(path, "rb").read()
    assert struct.unpack("<I", d[:4])[0] in (0xa1b2c3d4, 0xa1b23c4d), path
    off, out = 24, []
    while off < len(d):
        _, _, incl, _ = struct.unpack("<IIII", d[off:off + 16])
        out.append(d[off + 16:off + 16 + incl])
        off += 16 + incl
    return out

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s

def udp_ok(f):
    """(request id, type) of a valid QRP frame; asserts its checksums"""
    off = 14
    et = struct.unpack("!H", f[12:14])[0]
    while et in (0x8100, 0x88a8):
        et = struct.unpack("!H", f[off + 2:off + 4])[0]
        off += 4
    if et == 0x0800:
        ihl = (f[off] & 15) * 4
        assert csum(f[off:off + ihl]) == 0xffff, "ipv4 header checksum"
        src, dst, l4 = f[off + 12:off + 16], f[off + 16:off + 20], off + ihl
        ulen = struct.unpack("!H", f[l4 + 4:l4 + 6])[0]
        pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
    else:
        assert et == 0x86dd
        src, dst, l4 = f[off + 8:off + 24], f[off + 24:off + 40], off + 40
        ulen = struct.unpack("!H", f[l4 + 4:l4 + 6])[0]
        pseudo = src + dst + struct.pack("!IxxxB", ulen, 17)
    if not (et == 0x0800 and f[l4 + 6:l4 + 8] == b"\0\0"):
        assert csum(pseudo + f[l4:l4 + ulen]) == 0xffff, "udp checksum"
    q = f[l4 + 8:]
    return struct.unpack("!Q", q[8:16])[0], struct.unpack("!H", q[6:8])[0], q[3]

st = json.load(open("stats.json"))
tot, pw = st["counters"], st["per_worker"]
man = json.load(open("manifest.json"))
n_in = len(pcap("in.pcap"))
q = [pcap("q0.pcap"), pcap("q1.pcap")]
out = [pcap("out0.pcap"), pcap("out1.pcap")]
assert len(pw) == 2, pw
assert len(q[0]) > 1000 and len(q[1]) > 1000, [len(x) for x in q]
bad = []
def eq(what, a, b):
    if a != b:
        bad.append(f"{what}: {a} != {b}")
eq("rx = packets in", tot["rx"], n_in)
for w in pw:
    c, k = w["counters"], w["queue"]
    eq(f"worker {k} rx = its queue's packets", c["rx"], len(q[k]))
    eq(f"worker {k} tx = its queue's output", c["tx"], len(out[k]))
    eq(f"worker {k} rx = tx + consumed + drops", c["rx"],
       c["tx"] + c["consumed"] + sum(c["drops"].values()))
    assert c["requests"] > 500, c
for key, v in tot.items():
    if isinstance(v, int):
        eq(f"sum of workers' {key}", v, sum(w["counters"][key] for w in pw))
    else:
        for k2, v2 in v.items():
            eq(f"sum of workers' {key}.{k2}", v2, sum(w["counters"][key][k2] for w in pw))
eq("tx = frames out", tot["tx"], len(out[0]) + len(out[1]))
eq("requests", tot["requests"], man["requests"])
eq("cancels", tot["cancels"], man["cancels"])
for k, v in man["malformed"].items():
    if k != "unknown-request":
        eq(f"drops {k}", tot["drops"][k], v)
# continuations follow their request: one destination per (request id, tenant)
dest = {}
for k in (0, 1):
    for f in out[k]:
        rid, tenant, typ = udp_ok(f)
        dest.setdefault((rid, tenant), set()).add(f[:6])
split = [r for r, d in dest.items() if len(d) > 1]
eq("requests split over backends", len(split), 0)
if bad:
    print("FAIL:\n  " + "\n  ".join(bad[:20]))
    sys.exit(1)
print(f"2 workers: rx {[w['counters']['rx'] for w in pw]}, tx {[w['counters']['tx'] for w in pw]}, "
      f"{len(dest)} request ids, each at one backend; counters sum; nothing lost")
PY
