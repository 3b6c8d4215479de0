#!/usr/bin/env bash
# bench.sh - every benchmark in one table (issue 16): the int8 kernel, the DPDK
# dataplane, the XDP program, the simulator, the trainer and the agent's batching
# classifier, each on the generated test shape and on the shipped policy files, each
# beside a reference measured in the same run (these machines are shared and noisy:
# compare ratios, not absolute figures, across runs). Writes the table's figures and
# every program's own JSON to OUT.json.
#
# usage: scripts/bench.sh [--build DIR] [--json OUT.json] [--quick]
#   --build DIR   a release build (default build)
#   --json FILE   where the JSON goes (default DIR/bench.json)
#   --quick       short measurements (a smoke run: the figures are not worth quoting)
#
# What needs what: the dataplane row needs qsteer-dp (DPDK) and dpdk-testpmd for its
# reference; the XDP rows need root (BPF_PROG_TEST_RUN). A row that cannot run says
# why in the table instead of a figure; nothing is left out silently.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
BUILD=build JSON= QUICK=0
while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=${2:?--build needs a directory}; shift 2 ;;
	--json) JSON=${2:?--json needs a file}; shift 2 ;;
	--quick) QUICK=1; shift ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unexpected argument '$1' (--build DIR, --json FILE, --quick)" >&2; exit 2 ;;
	esac
done
[ -f "$BUILD/build.ninja" ] || { echo "bench.sh: $BUILD is not a meson build directory" >&2; exit 2; }
JSON=${JSON:-$BUILD/bench.json}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "bench.sh: needs Debian's /usr/bin/python3" >&2; exit 2; }
SHIPPED=$ROOT/policies/default-router.q8
BATCH=$ROOT/policies/default-batch.q8
T=$(mktemp -d /tmp/qsteer-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT

if [ $QUICK = 1 ]; then
	KSEC=0.02 DPSEC=1 XPASSES=2 REPS=1 AGENT_REQ=300
else
	KSEC=0.3 DPSEC=3 XPASSES=40 REPS=5 AGENT_REQ=2000
fi
exe() { [ -x "$BUILD/$1" ] && echo "$BUILD/$1"; }
# note NAME TEXT: why a row has no figure
note() { printf '%s\n' "$2" >"$T/$1.skip"; }

# ---- kernel: qs_policy_choose, 8 candidates x batch 32 among its cells -------------
if POL=$(exe policy_int8/qsteer-policy); then
	"$POL" bench --json --seconds $KSEC >"$T/kernel-test.json" 2>"$T/kernel.err" ||
		note kernel-test "qsteer-policy bench failed: $(tail -1 "$T/kernel.err")"
	"$POL" bench --json --seconds $KSEC --policy "$SHIPPED" >"$T/kernel-shipped.json" \
		2>"$T/kernel.err" || note kernel-shipped "failed: $(tail -1 "$T/kernel.err")"
else
	note kernel-test "qsteer-policy not built"
	note kernel-shipped "qsteer-policy not built"
fi

# ---- dataplane: one core, frames from memory; testpmd io on net_null --------------
DP=$(exe dp/qsteer-dp) MK=$(exe test/dp/qsteer-test-mkpolicy)
if [ -n "$DP" ] && [ -n "$MK" ]; then
	QS_BENCH_JSON=$T/dp.json sh tools/qsteer-dp-bench.sh "$DP" "$MK" test/dp/replay.ini \
		$DPSEC "$SHIPPED" >"$T/dp.out" 2>&1 || note dp "qsteer-dp-bench.sh failed: $(tail -1 "$T/dp.out")"
else
	note dp "qsteer-dp not built (DPDK missing)"
fi

# ---- XDP: BPF_PROG_TEST_RUN over varied frames, 8 backends, vs XDP_TX -------------
XB=$(exe test/ebpf/xdp-bench)
# shadow: the test shape also loaded as the shadow policy (qsteer-xdp --shadow's cost)
for which in test shipped shadow; do
	if [ -z "$XB" ] || [ -z "$MK" ]; then
		note xdp-$which "xdp-bench not built (libbpf or clang missing)"
	elif [ "$(id -u)" != 0 ]; then
		note xdp-$which "needs root (BPF_PROG_TEST_RUN)"
	else
		pol= sh=0
		[ $which = shipped ] && pol=$SHIPPED
		[ $which = shadow ] && sh=1
		QS_XDP_BENCH_PASSES=$XPASSES QS_XDP_BENCH_POLICY=$pol QS_XDP_BENCH_SHADOW=$sh \
			"$XB" "$MK" 20000 8 \
			>"$T/xdp-$which.out" 2>&1 ||
			note xdp-$which "xdp-bench failed: $(tail -1 "$T/xdp-$which.out")"
	fi
done

# ---- simulator: events/s with round robin (reference) and with the shipped router ---
if SIM=$(exe sim/qsteer-sim); then
	for r in $(seq $REPS); do
		"$SIM" bench --json --router rr >>"$T/sim-rr.jsonl" 2>>"$T/sim.err"
		"$SIM" bench --json --router "q8:$SHIPPED" >>"$T/sim-q8.jsonl" 2>>"$T/sim.err"
	done
else
	note sim "qsteer-sim not built"
fi

# ---- trainer: decisions/s on the bandit env, 2 threads vs 1 -------------------------
if TR=$(exe trainer/qsteer-train); then
	for r in $(seq $REPS); do
		"$TR" bench --json --threads 1 >>"$T/train-1.jsonl" 2>>"$T/train.err"
		"$TR" bench --json --threads 2 >>"$T/train-2.jsonl" 2>>"$T/train.err"
	done
else
	note trainer "qsteer-train not built"
fi

# ---- agent: the shipped batching classifier against the heuristics (quality) --------
if AG=$(exe agent/qsteer-agent); then
	for sc in bursty adversarial; do
		"$AG" bench --scenario $sc -b heuristics -b "q8:$BATCH" --requests $AGENT_REQ --json \
			>"$T/agent-$sc.json" 2>"$T/agent.err" ||
			note agent-$sc "qsteer-agent bench failed: $(tail -1 "$T/agent.err")"
	done
else
	note agent-bursty "qsteer-agent not built"
	note agent-adversarial "qsteer-agent not built"
fi

"$PY" - "$T" "$JSON" "$QUICK" "$REPS" <<'PY'
import glob, json, os, re, statistics, subprocess, sys, time
T, out_path, quick, REPS = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
rows, raw = [], {}

def skip(name):
    p = os.path.join(T, name + ".skip")
    return open(p).read().strip() if os.path.exists(p) else None

def row(what, figure, unit, ref, ref_what, ratio, target, note=""):
    rows.append(dict(what=what, figure=figure, unit=unit, reference=ref,
                     reference_what=ref_what, ratio=ratio, target=target, note=note))

def missing(what, why):
    rows.append(dict(what=what, figure=None, unit="", reference=None, reference_what="",
                     ratio=None, target="", note=why))

def load(name):
    with open(os.path.join(T, name)) as f:
        return json.load(f)

def jsonl(name):
    p = os.path.join(T, name)
    if not os.path.exists(p):
        return []
    return [json.loads(l) for l in open(p) if l.strip()]

# kernel
for which, label, target in (("test", "kernel, 16-32-16-1, 8 cand x 32", "<= 60 ns"),
                             ("shipped", "kernel, shipped router, 8 cand x 32", "<= 150 ns")):
    why = skip("kernel-" + which)
    if why:
        missing(label, why)
        continue
    k = load(f"kernel-{which}.json")
    raw["kernel_" + which] = k
    cells = [c for c in k["results"] if c["candidates"] == 8 and c["batch"] == 32]
    best = min(cells, key=lambda c: c["ns_per_decision"])
    scalar = next(c for c in cells if c["kernel"] == "scalar")
    row(f"{label} ({best['kernel']}, {k['shape']})", best["ns_per_decision"], "ns/decision",
        scalar["ns_per_decision"], "scalar", scalar["ns_per_decision"] / best["ns_per_decision"],
        target, "ratio: speedup over scalar")

# dataplane
why = skip("dp")
if why or not os.path.exists(os.path.join(T, "dp.json")):
    for w in ("dp requests, 16-32-16-1", "dp requests, shipped router", "dp continuations"):
        missing(w, why or "no figures (see tools/qsteer-dp-bench.sh)")
else:
    d = load("dp.json")
    raw["dp"] = d
    tp = d.get("testpmd_io", {}).get("mpps_median_s")
    for key, label, target in (("requests_test_shape", "dp requests, 16-32-16-1", ""),
                               ("requests_policy", "dp requests, shipped router", ">= 0.16 of testpmd"),
                               ("continuations", "dp continuations", ">= 0.9 of testpmd")):
        v = d[key]["mpps_median_s"]
        row(label, v, "Mpps (median second)", tp, "testpmd io, net_null",
            v / tp if tp else None, target, "" if tp else "testpmd not measured")

# XDP
for which, label in (("test", "XDP, 16-32-16-1, 8 backends"), ("shipped", "XDP, shipped router, 8 backends"),
                     ("shadow", "XDP, 16-32-16-1 + the same as shadow, 8 backends")):
    why = skip("xdp-" + which)
    if why:
        missing(label, why)
        continue
    text = open(os.path.join(T, f"xdp-{which}.out")).read()
    raw["xdp_" + which] = text
    m = re.search(r"^8\s+\|\s+(\d+)\s+(\d+)\s+(-?\d+)\s+\|", text, re.M)
    if not m:
        missing(label, "no 8-backend line in xdp-bench's output")
        continue
    varied, tx, diff = map(int, m.groups())
    row(label, diff, "ns/request above XDP_TX (varied)", tx, "XDP_TX, same run",
        varied / tx if tx else None, "<= 500 ns" if which != "shadow" else "",
        "ratio: steering / XDP_TX per packet")

def medians(name, fa, fb, key, what):
    """The medians of key over two series of runs (reference first), or None, said."""
    why, a, b = skip(name), jsonl(fa), jsonl(fb)
    if why or not a or not b:
        missing(what, why or f"{name}: its bench gave nothing")
        return None
    raw[name] = {fa: a, fb: b}
    return statistics.median(x[key] for x in a), statistics.median(x[key] for x in b)

# simulator
m = medians("sim", "sim-rr.jsonl", "sim-q8.jsonl", "events_per_s", "simulator events/s")
if m:
    e_rr, e_q8 = m
    row("sim, round robin", e_rr / 1e6, "M events/s", None, "", None, ">= 20 M", f"median of {REPS}")
    row("sim, shipped router (q8)", e_q8 / 1e6, "M events/s", e_rr / 1e6, "sim with rr",
        e_q8 / e_rr, "", "ratio: events/s with the policy over events/s with rr")

# trainer
m = medians("trainer", "train-1.jsonl", "train-2.jsonl", "decisions_per_s", "trainer decisions/s")
if m:
    d1, d2 = m
    row("trainer, bandit env, 2 threads", d2 / 1e3, "k decisions/s", d1 / 1e3, "1 thread",
        d2 / d1, "", "ratio: scaling to 2 threads")

# agent: quality, not speed
for sc in ("bursty", "adversarial"):
    why = skip("agent-" + sc)
    if why:
        missing(f"agent batching, {sc}", why)
        continue
    a = load(f"agent-{sc}.json")
    raw["agent_" + sc] = a
    q8 = [x for x in a if x["strategy"].startswith("q8:")]
    heur = [x for x in a if not x["strategy"].startswith("q8:")]
    if not q8 or not heur:
        missing(f"agent batching, {sc}", "no q8 or no heuristic rows")
        continue
    best = max(heur, key=lambda x: x["slo_attainment"])
    row(f"agent batching q8, {sc} (SLO attainment)", q8[0]["slo_attainment"], "SLO attainment",
        best["slo_attainment"], "best heuristic: " + best["strategy"],
        q8[0]["slo_attainment"] / best["slo_attainment"], "> best heuristic",
        f"{q8[0]['completed']} requests, deterministic")

def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
load1 = os.getloadavg()[0]
stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
try:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
except OSError:
    rev = "?"
print(f"qsteer benchmarks, {stamp}, commit {rev}, {cpu}, {os.cpu_count()} CPUs, load {load1:.2f}"
      + (" (--quick: smoke figures only)" if quick else ""))
w = max(len(r["what"]) for r in rows)
print(f"{'what':<{w}}  {'figure':>9}  {'unit':<34} {'reference':>9}  {'ratio':>6}  {'target':<18} note")
for r in rows:
    print(f"{r['what']:<{w}}  {fmt(r['figure']):>9}  {r['unit']:<34} {fmt(r['reference']):>9}  "
          f"{fmt(r['ratio']):>6}  {r['target']:<18} "
          + "; ".join(x for x in (r["reference_what"] and "ref: " + r["reference_what"], r["note"]) if x))
with open(out_path, "w") as f:
    json.dump({"date": stamp, "commit": rev, "cpu": cpu, "cpus": os.cpu_count(), "load1": load1,
               "quick": quick, "rows": rows, "raw": raw}, f, indent=1)
print(f"JSON: {out_path}")
sys.exit(0 if rows and any(r["figure"] is not None for r in rows) else 1)
PY
