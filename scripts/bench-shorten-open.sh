#!/usr/bin/env bash
# scripts/bench-shorten-open.sh: the latency of a shorten at moderate load,
# shortens only (no redirects, so no click flushes), as an A/B of two builds
# on the same machine in the same window.
#
#   For each of SHORTEN_ROUNDS rounds, for build A and build B (when
#   SHORTEN_BIN_B is set; B goes first in every other round):
#   1. a fresh cluster (3 nodes, 3 shards of 3 replicas, fsync'd, one
#      router), started with `linkraft up` from a generated config, and
#      SHORTEN_LINKS links created in it (at 256 in flight), so that the
#      nodes' Pebble WALs have rotated and are recycled, as on a node that
#      has run for a while (a fresh WAL grows with every write, and each
#      of its syncs then also commits the file system's journal);
#   2. for each rate of SHORTEN_RATES, an open-loop shorten run (`linkraft
#      bench -workload shorten -rate R -c 256`: every latency counted from
#      its intended send time) of SHORTEN_DURATION after SHORTEN_WARMUP;
#   3. unless SHORTEN_CLOSED_C is empty, a closed-loop shorten run at that
#      concurrency (default 256) of the same length;
#   4. the cluster is stopped.
#   Per run: creates/s, p50, p99, p99.9 and the CPU (user + system) per
#   create of the three nodes (summed) and of the router over the measured
#   part of the run. Then the median of every column per build and run,
#   and the ratio B/A of the medians. With SHORTEN_PROFILE=DIR, a CPU
#   profile of every node and of the router over the measured part of each
#   run (BUILD-ROUND-RUN-n1.cpu.pprof ... -r1.cpu.pprof in DIR; read them
#   with `go tool pprof -top -cum BINARY FILES...`).
#
# Knobs (environment): LINKRAFT_BIN (build A; default bin/linkraft, built
# when missing), SHORTEN_BIN_B (build B; none), SHORTEN_LINKS (30000),
# SHORTEN_RATES ("950 1900"),
# SHORTEN_CLOSED_C (256; empty: no closed loop), SHORTEN_ROUNDS (3),
# SHORTEN_DURATION (10s), SHORTEN_WARMUP (2s), SHORTEN_OUT (a directory to keep
# the JSON results in). About a minute per cluster plus the runs: with
# the defaults and two builds, about 8 minutes. SHORTEN_PROFILE (none; needs
# SHORTEN_DURATION in whole seconds, "10s"). (scripts/bench-open.sh is
# the mixed open loop with redirects, for router builds.)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GO=${GO:-go}
BIN=${LINKRAFT_BIN:-$ROOT/bin/linkraft}
BIN_B=${SHORTEN_BIN_B:-}
LINKS=${SHORTEN_LINKS:-30000}
RATES=${SHORTEN_RATES:-950 1900}
CLOSED_C=${SHORTEN_CLOSED_C-256}
ROUNDS=${SHORTEN_ROUNDS:-3}
DURATION=${SHORTEN_DURATION:-10s}
WARMUP=${SHORTEN_WARMUP:-2s}
PROFILE=${SHORTEN_PROFILE:-}
if [[ -n $PROFILE ]]; then
	[[ $DURATION =~ ^[0-9]+s$ ]] || { echo "SHORTEN_PROFILE needs SHORTEN_DURATION in whole seconds (\"10s\"), not $DURATION" >&2; exit 2; }
	mkdir -p "$PROFILE"
fi

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
make_tmp shorten-open
STOP_SECS=30
OUT=${SHORTEN_OUT:-$TMP/out}
mkdir -p "$OUT"

build_linkraft if-missing
BUILDS=(A)
[[ -z $BIN_B ]] || BUILDS+=(B)
declare -A BIN_OF=([A]=$BIN [B]=$BIN_B)

RUNS=()
for r in $RATES; do RUNS+=("rate$r"); done
[[ -z $CLOSED_C ]] || RUNS+=("c$CLOSED_C")

# json_num FILE KEY: the first number after "KEY": in FILE (the total's).
json_num() { grep -m1 "\"$2\":" "$1" | sed 's/.*: *//; s/,.*//'; }

# one_cluster BUILD ROUND: a fresh cluster of BUILD's binary, every run of
# RUNS against it, one line per run in $TMP/rows.
one_cluster() {
	local build=$1 round=$2 bin=${BIN_OF[$1]} dir="$TMP/c-$1-$2" up run args n0 r0 n1 r1 f ok
	mkdir -p "$dir"
	write_cluster "$dir/cluster.yaml" "$dir/data" default "r1 1000000"
	local r1addr=${ROUTER_ADDR[r1]}
	log "round $round, build $build ($bin): starting a cluster"
	start "up-$build-$round" "$bin" up --config "$dir/cluster.yaml"
	up=${PIDS[-1]}
	wait_status "$r1addr" /readyz 200 90 "router r1"
	local nodes=() routers=()
	up_children "$up"
	IFS=, read -r -a nodes <<<"$UP_NODES"
	routers=("${UP_ROUTER[@]}")
	((${#nodes[@]} == 3 && ${#routers[@]} == 1)) || { echo "found ${#nodes[@]} nodes and ${#routers[@]} routers under pid $up, want 3 and 1" >&2; return 1; }
	if ((LINKS > 0)); then
		log "round $round, build $build: creating $LINKS links"
		"$bin" bench -progress=false -target "http://$r1addr" -workload cold -links "$LINKS" -setup-c 256 \
			-c 16 -duration 1s -warmup 0s -out "$dir/links.json" >/dev/null
	fi
	for run in "${RUNS[@]}"; do
		case $run in
		rate*) args=(-rate "${run#rate}" -c 256) ;;
		c*) args=(-c "${run#c}") ;;
		esac
		f=$OUT/$build-$round-$run.json
		log "round $round, build $build: $run"
		"$bin" bench -progress=false -target "http://$r1addr" -workload shorten "${args[@]}" \
			-duration "$DURATION" -warmup "$WARMUP" -label "$build $run" -out "$f" >/dev/null &
		local bench=$!
		sleep "${WARMUP%s}"
		n0=$(cpu_ticks "${nodes[@]}") r0=$(cpu_ticks "${routers[@]}")
		local profilers=() secs i
		if [[ -n $PROFILE ]]; then
			# The measured part of the run, less a second for the requests
			# to reach the admin listeners.
			secs=$((${DURATION%s} - 1))
			((secs > 0)) || secs=1
			for i in 0 1 2; do
				curl -fsS -o "$PROFILE/$build-$round-$run-n$((i + 1)).cpu.pprof" \
					"http://${NODE_ADMIN[$i]}/debug/pprof/profile?seconds=$secs" &
				profilers+=($!)
			done
			curl -fsS -o "$PROFILE/$build-$round-$run-r1.cpu.pprof" \
				"http://${ROUTER_ADMIN[r1]}/debug/pprof/profile?seconds=$secs" &
			profilers+=($!)
		fi
		wait "$bench"
		n1=$(cpu_ticks "${nodes[@]}") r1=$(cpu_ticks "${routers[@]}")
		((${#profilers[@]} == 0)) || wait "${profilers[@]}" || log "round $round, build $build, $run: a profile could not be taken"
		ok=$(json_num "$f" ok)
		awk -v b="$build" -v rd="$round" -v run="$run" -v ops="$(json_num "$f" ops_per_s)" \
			-v p50="$(json_num "$f" p50)" -v p99="$(json_num "$f" p99)" -v p999="$(json_num "$f" p99_9)" \
			-v n=$((n1 - n0)) -v r=$((r1 - r0)) -v hz="$TICK" -v ok="$ok" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
			if (ok <= 0) ok = 1
			printf "%s %s %s %.0f %.2f %.2f %.2f %.1f %.1f %s\n", b, rd, run, ops, p50 / 1000, p99 / 1000, p999 / 1000, n / hz * 1e6 / ok, r / hz * 1e6 / ok, load }' >>"$TMP/rows"
	done
	stop_all
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$TMP/rows"
for round in $(seq 1 "$ROUNDS"); do
	order=("${BUILDS[@]}")
	if ((${#BUILDS[@]} == 2 && round % 2 == 0)); then order=(B A); fi
	for b in "${order[@]}"; do
		one_cluster "$b" "$round"
	done
done
cp "$TMP/rows" "$OUT/rows.txt"

echo "## linkraft shorten at moderate load: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "Machine: $(nproc) CPUs, $(uname -sr); load average $LOAD_BEFORE before the runs."
echo "A: $BIN${BIN_B:+; B: $BIN_B}. $LINKS links created first in each cluster. Open loop: -rate R -c 256; closed loop: -c N. $DURATION after $WARMUP warmup."
echo
echo "| build | round | run | creates/s | p50 ms | p99 ms | p99.9 ms | nodes µs/create | router µs/create | load |"
echo "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|"
sort -k3,3 -k1,1 -k2,2n "$TMP/rows" | awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
echo
echo "Medians per build and run (and B/A):"
echo
echo "| run | build | creates/s | p50 ms | p99 ms | p99.9 ms | nodes µs/create | router µs/create |"
echo "|---|---|--:|--:|--:|--:|--:|--:|"
for run in "${RUNS[@]}"; do
	for b in "${BUILDS[@]}"; do
		awk -v b="$b" -v run="$run" "$AWK_MEDIAN"'
			$1 == b && $3 == run { k++; for (i = 4; i <= 9; i++) col[i, k] = $i }
			END {
				line = "| " run " | " b
				for (i = 4; i <= 9; i++) { for (j = 1; j <= k; j++) a[j] = col[i, j]; line = line " | " median(a, k) }
				print line " |"
			}' "$TMP/rows"
	done
	if ((${#BUILDS[@]} == 2)); then
		awk -v run="$run" "$AWK_MEDIAN"'
			$3 == run { n[$1]++; for (i = 4; i <= 9; i++) col[$1, i, n[$1]] = $i }
			END {
				line = "| " run " | B/A"
				for (i = 4; i <= 9; i++) {
					for (j = 1; j <= n["A"]; j++) a[j] = col["A", i, j]; ma = median(a, n["A"])
					for (j = 1; j <= n["B"]; j++) a[j] = col["B", i, j]; mb = median(a, n["B"])
					line = line sprintf(" | %.2fx", ma > 0 ? mb / ma : 0)
				}
				print line " |"
			}' "$TMP/rows"
	fi
done
