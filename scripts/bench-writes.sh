#!/usr/bin/env bash
# scripts/bench-writes.sh: `make bench-writes`. Measures the write side of a
# local cluster (3 nodes, 3 shards of 3 replicas, fsync'd) with the bench
# harness, and what the links cost on disk:
#
#   1. shorten, single client (-c 1): the latency of one create;
#   2. shorten at -c $WRITES_C (256), with a CPU and an allocation profile of
#      every node and a CPU profile of the router taken during the run
#      (their admin listeners), kept in $WRITES_OUT when set, and the CPU
#      per create of the nodes (summed), of the router and of the generator
#      (`linkraft bench`), from /proc/<pid>/stat over the measured part of the
#      run; WRITES_GEN_PROFILE=1 also keeps a CPU profile of the generator;
#   3. $WRITES_LINKS (1,000,000) links created through the router, then
#      $WRITES_SETTLE (150s: longer than raft's snapshot interval) of rest so
#      that snapshots and log truncation happen; the cluster is stopped and
#      `linkraft admin du` reports each node's bytes by kind (raft log, FSM,
#      raft snapshots, WAL and the rest) and per link. WRITES_LINKS=0 skips it.
#
# Knobs (environment): WRITES_DURATION (10s), WRITES_C (256), WRITES_LINKS,
# WRITES_SETTLE, WRITES_OUT (a directory to keep results and profiles in),
# WRITES_SKIP_SHORTEN=1 (only the disk part), WRITES_SKIP_C1=1 (no
# single-client run), WRITES_GEN_PROFILE=1, LINKRAFT_BIN. It loads the
# whole machine: run it rarely.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GO=${GO:-go}
DURATION=${WRITES_DURATION:-10s}
CONC=${WRITES_C:-256}
LINKS=${WRITES_LINKS:-1000000}
SETTLE=${WRITES_SETTLE:-150}
BIN=${LINKRAFT_BIN:-$ROOT/bin/linkraft}

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
make_tmp writes
STOP_SECS=30
OUT=${WRITES_OUT:-$TMP/out}
mkdir -p "$OUT"

build_linkraft always

CLUSTER=$TMP/cluster
mkdir -p "$CLUSTER"
write_cluster "$CLUSTER/cluster.yaml" "$CLUSTER/data" default "r1 1000000"
R1=${ROUTER_ADDR[r1]}
RADMIN=${ROUTER_ADMIN[r1]}
ADMIN=("${NODE_ADMIN[@]}")
log "starting the cluster (router $R1, node admin ${ADMIN[*]})"
start up "$BIN" up --config "$CLUSTER/cluster.yaml"
UP_PID=${PIDS[-1]}
wait_status "$R1" /readyz 200 90 "router r1"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# The cluster's processes, children of `linkraft up`: the nodes and the router.
up_children "$UP_PID"
IFS=, read -r -a NODE_PIDS <<<"$UP_NODES"
ROUTER_PIDS=("${UP_ROUTER[@]}")
((${#NODE_PIDS[@]} == 3 && ${#ROUTER_PIDS[@]} == 1)) || { echo "found ${#NODE_PIDS[@]} nodes and ${#ROUTER_PIDS[@]} routers under pid $UP_PID, want 3 and 1" >&2; exit 1; }

run_bench() {
	local name=$1
	shift
	log "bench $name: linkraft bench $*"
	"$BIN" bench -progress=false -target "http://$R1" -out "$OUT/$name.json" "$@" >"$OUT/$name.md"
}

if [[ -z ${WRITES_SKIP_SHORTEN:-} ]]; then
	RESULTS=$OUT/02-shorten-c$CONC.json
	if [[ -z ${WRITES_SKIP_C1:-} ]]; then
		run_bench 01-shorten-c1 -label "shorten c=1" -workload shorten -c 1 -duration "$DURATION" -warmup 2s
		RESULTS=$OUT/01-shorten-c1.json,$RESULTS
	fi
	# Profile every node during the loaded run: they share the load (each leads
	# about one shard and follows the others).
	secs=$(( ${DURATION%s} - 2 ))
	((secs > 0)) || secs=1
	PROFILERS=()
	for i in 0 1 2; do
		(sleep 3 && curl -fsS -o "$OUT/n$((i + 1)).cpu.pprof" "http://${ADMIN[$i]}/debug/pprof/profile?seconds=$secs" &&
			curl -fsS -o "$OUT/n$((i + 1)).allocs.pprof" "http://${ADMIN[$i]}/debug/pprof/allocs") &
		PROFILERS+=($!)
	done
	(sleep 3 && curl -fsS -o "$OUT/r1.cpu.pprof" "http://$RADMIN/debug/pprof/profile?seconds=$secs") &
	PROFILERS+=($!)
	# CPU of the nodes and the router over the measured part of the run
	# (after its 2s warmup), per create.
	GEN_ARGS=()
	[[ -z ${WRITES_GEN_PROFILE:-} ]] || GEN_ARGS=(-cpuprofile "$OUT/gen.cpu.pprof")
	run_bench "02-shorten-c$CONC" -label "shorten c=$CONC" -workload shorten -c "$CONC" -duration "$DURATION" -warmup 2s "${GEN_ARGS[@]}" &
	BENCH_PID=$!
	sleep 2
	# The generator: the background shell's child, or the shell itself when
	# it exec'd the command.
	GEN_PID=$(pgrep -P "$BENCH_PID" | head -1 || true)
	GEN_PID=${GEN_PID:-$BENCH_PID}
	n0=$(cpu_ticks "${NODE_PIDS[@]}") r0=$(cpu_ticks "${ROUTER_PIDS[@]}") g0=$(cpu_ticks "$GEN_PID")
	# The generator's ticks: read until it exits (its last reading is at
	# most 0.2s before its end, when it no longer sends).
	g1=$g0
	while t=$(cpu_ticks "$GEN_PID" 2>/dev/null); do
		g1=$t
		sleep 0.2
	done
	wait "$BENCH_PID"
	n1=$(cpu_ticks "${NODE_PIDS[@]}") r1=$(cpu_ticks "${ROUTER_PIDS[@]}")
	wait "${PROFILERS[@]}" || log "a profile could not be taken"
	creates=$(grep -o '"ok": [0-9]*' "$OUT/02-shorten-c$CONC.json" | head -1 | sed 's/.*: //')

	echo "## linkraft write bench: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo
	echo "Machine: $(nproc) CPUs, $(uname -sr); load average $LOAD_BEFORE before the runs."
	echo
	"$BIN" bench -combine "$RESULTS" | tail -n +3
	echo
	awk -v n=$((n1 - n0)) -v r=$((r1 - r0)) -v g=$((g1 - g0)) -v hz="$TICK" -v c="$creates" -v conc="$CONC" 'BEGIN {
		if (c > 0) printf "CPU per create at c=%s (%d creates): nodes %.1f us (the three summed), router %.1f us, generator %.1f us.\n", conc, c, n / hz * 1e6 / c, r / hz * 1e6 / c, g / hz * 1e6 / c }'
fi

if ((LINKS > 0)); then
	log "creating $LINKS links (-setup-c $CONC)"
	"$BIN" bench -progress=false -target "http://$R1" -workload cold -links "$LINKS" -setup-c "$CONC" \
		-c 64 -duration 1s -warmup 0s -out "$OUT/03-load.json" >"$OUT/03-load.md"
	rate=$(grep -o '"per_s": [0-9.]*' "$OUT/03-load.json" | head -1 | sed 's/.*: //')
	echo
	echo "Created $LINKS links at ${rate%.*} creates/s (-setup-c $CONC)."
	log "resting ${SETTLE}s so that snapshots and log truncation run"
	sleep "$SETTLE"
	stop_all
	echo
	echo "Disk after $LINKS links and ${SETTLE}s of rest (cluster stopped):"
	echo
	for i in 1 2 3; do
		"$BIN" admin du -data-dir "$CLUSTER/data/n$i" -links "$LINKS"
		echo
	done
fi
