#!/usr/bin/env bash
# scripts/bench-cold.sh: the cold redirect (every redirect a cache miss that
# reaches a shard), A/B of two router builds against one cluster in the same
# window, measured by CPU per redirect of every process as well as by
# throughput. On a machine shared with other work throughput moves by 2-3x
# from one minute to the next; the CPU each process spends per redirect
# moves far less, so it is the number to compare two builds by.
#
#   1. A cluster of 3 nodes ($LINKRAFT_BIN) and 3 shards of 3 replicas, and
#      two routers with cache_size 0: A runs $LINKRAFT_BIN, B (when
#      COLD_BIN_B is set) runs COLD_BIN_B against the same nodes. Each
#      process is started on its own, so its CPU time can be read. Every
#      process has an admin_addr (/debug/pprof/).
#   2. COLD_LINKS links are created through A.
#   3. COLD_ROUNDS rounds of A and B (B first every other round), each
#      `linkraft bench -workload cold -c COLD_C` for COLD_DURATION. Per run:
#      ops/s, p99, and the CPU (user + system) per redirect of the router,
#      of the three nodes and of the load generator.
#   4. With COLD_PROFILE=DIR, one more run per router with a CPU profile of
#      the router and of every node taken meanwhile, kept in DIR
#      (go tool pprof -top DIR/A-router.pprof).
#   5. A table of every run, then the medians per router.
#
# Knobs (environment): LINKRAFT_BIN (default bin/linkraft, built when
# missing), COLD_BIN_B (none), COLD_LINKS (20000), COLD_ROUNDS (3),
# COLD_DURATION (6s), COLD_C (64), COLD_PROFILE (none).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GO=${GO:-go}
BIN=${LINKRAFT_BIN:-$ROOT/bin/linkraft}
BIN_B=${COLD_BIN_B:-}
LINKS=${COLD_LINKS:-20000}
ROUNDS=${COLD_ROUNDS:-3}
DURATION=${COLD_DURATION:-6s}
CONC=${COLD_C:-64}
PROFILE=${COLD_PROFILE:-}

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
make_tmp cold

build_linkraft if-missing

# ---- 1. the cluster --------------------------------------------------------
write_cluster "$TMP/cluster.yaml" "$TMP/data" default "ra 0" "rb 0"
start_nodes "$TMP/cluster.yaml"
start_ab_routers "$TMP/cluster.yaml"
SERVERS=("A $RA $RA_PID ${ROUTER_ADMIN[ra]}")
[[ -z $BIN_B ]] || SERVERS+=("B $RB $RB_PID ${ROUTER_ADMIN[rb]}")
log "cluster: 3 nodes, router A $RA ($BIN)${BIN_B:+, router B $RB ($BIN_B)}, both cache_size 0"

# ---- 2. links --------------------------------------------------------------
log "creating $LINKS links through A"
"$BIN" bench -target "http://$RA" -workload redirect -c "$CONC" -links "$LINKS" -save-codes "$TMP/codes.txt" \
	-duration 1s -warmup 0s -progress=false >"$TMP/create.md"

# ---- 3. rounds -------------------------------------------------------------
# run ROUND NAME HOST:PORT PID: one run; appends a row to $TMP/runs.
run() {
	local round=$1 name=$2 hp=$3 pid=$4 s0 n0 g0 s1 n1 g1 row
	children_ticks
	g0=$CHILD_TICKS
	s0=$(cpu_ticks "$pid") n0=$(cpu_ticks "${NODE_PIDS[@]}")
	"$BIN" bench -target "http://$hp" -workload cold -c "$CONC" -codes-file "$TMP/codes.txt" -duration "$DURATION" \
		-warmup 1s -progress=false -label "$name" >"$TMP/run.md"
	s1=$(cpu_ticks "$pid") n1=$(cpu_ticks "${NODE_PIDS[@]}")
	children_ticks
	g1=$CHILD_TICKS
	row=$(grep -E '^\| (cold|redirect) ' "$TMP/run.md" | head -1) || { cat "$TMP/run.md" >&2; return 1; }
	# | op | requests | ok | ops/s | p50 | p90 | p99 | ... The CPU counts
	# the warmup second too, so it is divided by the requests of the
	# warmup and of the run: ops/s x (duration + 1 s).
	awk -F'|' -v r="$round" -v n="$name" -v s=$((s1 - s0)) -v nd=$((n1 - n0)) -v g=$((g1 - g0)) -v hz="$TICK" -v d="${DURATION%s}" '{
		gsub(/[ ,]/, "", $5); gsub(/ /, "", $8)
		us = 1e6 / hz / ($5 * (d + 1))
		printf "%s %s %s %s %.1f %.1f %.1f\n", r, n, $5, $8, s * us, nd * us, g * us
	}' <<<"$row" >>"$TMP/runs"
}
: >"$TMP/runs"
for i in $(seq 1 "$ROUNDS"); do
	order=("${SERVERS[@]}")
	if ((i % 2 == 0 && ${#order[@]} == 2)); then
		order=("${SERVERS[1]}" "${SERVERS[0]}")
	fi
	log "round $i of $ROUNDS (load average $(cut -d' ' -f1 /proc/loadavg))"
	for s in "${order[@]}"; do
		read -r name hp pid _ <<<"$s"
		run "$i" "$name" "$hp" "$pid"
	done
done

# ---- 4. profiles -----------------------------------------------------------
if [[ -n $PROFILE ]]; then
	mkdir -p "$PROFILE"
	secs=${DURATION%s}
	for s in "${SERVERS[@]}"; do
		read -r name hp _ admin <<<"$s"
		log "profiling router $name and the nodes for ${secs}s"
		"$BIN" bench -target "http://$hp" -workload cold -c "$CONC" -codes-file "$TMP/codes.txt" \
			-duration "$((secs + 2))s" -warmup 1s -progress=false >/dev/null &
		load=$!
		sleep 1
		fetch=()
		curl -s -o "$PROFILE/$name-router.pprof" "http://$admin/debug/pprof/profile?seconds=$secs" &
		fetch+=("$!")
		for i in 1 2 3; do
			curl -s -o "$PROFILE/$name-n$i.pprof" "http://${NODE_ADMIN[$((i - 1))]}/debug/pprof/profile?seconds=$secs" &
			fetch+=("$!")
		done
		wait "${fetch[@]}" "$load"
	done
fi

# ---- 5. tables -------------------------------------------------------------
echo "### Cold redirect, CPU per redirect ($ROUNDS rounds of $DURATION, -c $CONC, $LINKS codes, routers with cache_size 0)"
echo
echo "$(uname -m), $(nproc) CPUs, load average before the last round: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "A = $BIN${BIN_B:+; B = $BIN_B}."
echo
echo "| round | router | ops/s | p99 | router µs/redirect | nodes µs/redirect | generator µs/redirect |"
echo "|--:|---|--:|--:|--:|--:|--:|"
awk '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$TMP/runs"
echo
echo "| medians | ops/s | router µs/redirect | nodes µs/redirect | generator µs/redirect |"
echo "|---|--:|--:|--:|--:|"
for s in "${SERVERS[@]}"; do
	name=${s%% *}
	awk -v n="$name" "$AWK_MEDIAN"'
		$2 == n { k++; ops[k] = $3; sv[k] = $5; nd[k] = $6; g[k] = $7 }
		END { printf "| %s | %.0f | %.1f | %.1f | %.1f |\n", n, median(ops, k), median(sv, k), median(nd, k), median(g, k) }' "$TMP/runs"
done
