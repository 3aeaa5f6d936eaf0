#!/usr/bin/env bash
# scripts/bench-writes.sh: `make bench-writes`. Measures the write side of a
# local cluster (3 nodes, 3 shards of 3 replicas, fsync'd) with the bench
# harness, and what the links cost on disk:
#
#   1. shorten, single client (-c 1): the latency of one create;
#   2. shorten at -c $WRITES_C (256), with a CPU and an allocation profile of
#      every node and a CPU profile of the router taken during the run
#      (their admin listeners), kept in $WRITES_OUT when set, and the CPU
#      per create of the nodes (summed) and of the router, from
#      /proc/<pid>/stat over the measured part of the run;
#   3. $WRITES_LINKS (1,000,000) links created through the router, then
#      $WRITES_SETTLE (150s: longer than raft's snapshot interval) of rest so
#      that snapshots and log truncation happen; the cluster is stopped and
#      `linkraft admin du` reports each node's bytes by kind (raft log, FSM,
#      raft snapshots, WAL and the rest) and per link. WRITES_LINKS=0 skips it.
#
# Knobs (environment): WRITES_DURATION (10s), WRITES_C (256), WRITES_LINKS,
# WRITES_SETTLE, WRITES_OUT (a directory to keep results and profiles in),
# WRITES_SKIP_SHORTEN=1 (only the disk part), WRITES_SKIP_C1=1 (no
# single-client run), LINKRAFT_BIN. It loads the
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

TMP=$(mktemp -d "${TMPDIR:-/tmp}/linkraft-writes.XXXXXX")
OUT=${WRITES_OUT:-$TMP/out}
mkdir -p "$OUT"
UP_PID=

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

stop_up() {
	stop_pid "$UP_PID" "the cluster" 30
	UP_PID=
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_up
	[[ $rc -ne 0 && -s $TMP/up.log ]] && { echo "---- last lines of up.log ----" >&2; tail -n 40 "$TMP/up.log" >&2; }
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_ready() {
	local hp=$1
	for _ in $(seq 1 450); do
		curl -fsS -o /dev/null "http://$hp/readyz" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "router $hp not ready within 90s" >&2
	return 1
}

if [[ -z ${LINKRAFT_BIN:-} ]]; then
	log "building bin/linkraft"
	CGO_ENABLED=0 "$GO" build -o "$BIN" ./cmd/linkraft
fi

CLUSTER=$TMP/cluster
mkdir -p "$CLUSTER"
free_port
R1=127.0.0.1:$PORT
ADMIN=()
{
	printf 'cluster:\n  partitions: 1024\n  code_length: 7\n  redirect_status: 301\n  click_flush_interval: 1s\n'
	printf 'nodes:\n'
	for i in 1 2 3; do
		free_port
		raft=$PORT
		free_port
		rpc=$PORT
		free_port
		ADMIN+=("127.0.0.1:$PORT")
		printf '  - id: n%d\n    raft_addr: 127.0.0.1:%d\n    rpc_addr: 127.0.0.1:%d\n    admin_addr: 127.0.0.1:%d\n    data_dir: data/n%d\n' \
			"$i" "$raft" "$rpc" "$PORT" "$i"
	done
	printf 'shards:\n'
	for i in 1 2 3; do
		printf '  - id: %d\n    replicas: [n1, n2, n3]\n' "$i"
	done
	printf 'routers:\n'
	free_port
	RADMIN=127.0.0.1:$PORT
	printf '  - id: r1\n    listen: %s\n    admin_addr: %s\n    base_url: http://%s\n    cache_size: 1000000\n' "$R1" "$RADMIN" "$R1"
} >"$CLUSTER/cluster.yaml"
log "starting the cluster (router $R1, node admin ${ADMIN[*]})"
setsid "$BIN" up --config "$CLUSTER/cluster.yaml" >"$TMP/up.log" 2>&1 &
UP_PID=$!
wait_ready "$R1"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# cpu_ticks PID...: the user + system clock ticks of the processes.
cpu_ticks() {
	local t=0 p f
	for p in "$@"; do
		read -r -a f <"/proc/$p/stat"
		# Fields 14 and 15 (utime, stime); the command name (field 2) of
		# these processes has no spaces.
		t=$((t + f[13] + f[14]))
	done
	echo "$t"
}

# The cluster's processes, children of `linkraft up`: the nodes and the router.
NODE_PIDS=()
ROUTER_PIDS=()
for p in $(pgrep -P "$UP_PID"); do
	case " $(tr '\0' ' ' <"/proc/$p/cmdline")" in
	*" node "*) NODE_PIDS+=("$p") ;;
	*" router "*) ROUTER_PIDS+=("$p") ;;
	esac
done
((${#NODE_PIDS[@]} == 3 && ${#ROUTER_PIDS[@]} == 1)) || { echo "found ${#NODE_PIDS[@]} nodes and ${#ROUTER_PIDS[@]} routers under pid $UP_PID, want 3 and 1" >&2; exit 1; }
TICK=$(getconf CLK_TCK)

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
	run_bench 02-shorten-c$CONC -label "shorten c=$CONC" -workload shorten -c "$CONC" -duration "$DURATION" -warmup 2s &
	BENCH_PID=$!
	sleep 2
	n0=$(cpu_ticks "${NODE_PIDS[@]}") r0=$(cpu_ticks "${ROUTER_PIDS[@]}")
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
	awk -v n=$((n1 - n0)) -v r=$((r1 - r0)) -v hz="$TICK" -v c="$creates" -v conc="$CONC" 'BEGIN {
		if (c > 0) printf "CPU per create at c=%s (%d creates): nodes %.1f us (the three summed), router %.1f us.\n", conc, c, n / hz * 1e6 / c, r / hz * 1e6 / c }'
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
	stop_up
	echo
	echo "Disk after $LINKS links and ${SETTLE}s of rest (cluster stopped):"
	echo
	for i in 1 2 3; do
		"$BIN" admin du -data-dir "$CLUSTER/data/n$i" -links "$LINKS"
		echo
	done
fi
