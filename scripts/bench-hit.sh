#!/usr/bin/env bash
# scripts/bench-hit.sh: the cached redirect alone (issue 5's first target),
# against nginx in the same window, measured by CPU per redirect as well as
# by throughput. On a machine shared with other work the throughput of
# either server moves by 2-3x from one minute to the next; the CPU each
# process spends per redirect moves far less, so it is the number to
# compare two builds by.
#
#   1. nginx runs from a generated config (every path answers
#      `301 https://example.com/target`, as in scripts/bench.sh); it must be
#      installed (scripts/bench.sh installs it).
#   2. A cluster of 3 nodes and 3 shards of 3 replicas with cache_ttl 1h
#      and two routers: A runs $LINKRAFT_BIN, B (when HIT_BIN_B is set) runs
#      HIT_BIN_B against the same nodes, for an A/B of two builds. Each
#      process is started on its own, so its CPU time can be read, and has
#      an admin_addr (printed at start-up) to profile it during the rounds:
#      go tool pprof http://ADDR/debug/pprof/profile?seconds=4
#   3. HIT_LINKS links are created through A, then every router is warmed
#      with the cold workload (uniform over the codes) for HIT_WARM, so
#      that the measured redirects are cache hits (all but the few codes
#      the warmup did not draw, which the Zipf draw rarely asks for).
#   4. HIT_ROUNDS rounds of nginx, A and B (A and B swap places every other
#      round), each `linkraft bench -workload redirect -c HIT_C` for
#      HIT_DURATION. Per run: ops/s, p99, and the CPU (user + system) per
#      redirect of the server (nginx: master and workers), of the three
#      nodes (they apply the counted clicks) and of the load generator.
#   5. A table of every run, then the medians per server with the ratio of
#      each run's throughput to the nginx run of its round.
#
# Knobs (environment): LINKRAFT_BIN (default bin/linkraft, built when
# missing), HIT_BIN_B (none), HIT_LINKS (20000), HIT_ROUNDS (3),
# HIT_DURATION (4s), HIT_C (64), HIT_WARM (5s). About 15 s of setup plus
# HIT_ROUNDS x (2 or 3) x HIT_DURATION of load.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GO=${GO:-go}
BIN=${LINKRAFT_BIN:-$ROOT/bin/linkraft}
BIN_B=${HIT_BIN_B:-}
LINKS=${HIT_LINKS:-20000}
ROUNDS=${HIT_ROUNDS:-3}
DURATION=${HIT_DURATION:-4s}
CONC=${HIT_C:-64}
WARM=${HIT_WARM:-5s}

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
make_tmp hit

build_linkraft if-missing

# ---- 1. nginx --------------------------------------------------------------
start_nginx

# ---- 2. the cluster --------------------------------------------------------
write_cluster "$TMP/cluster.yaml" "$TMP/data" 1h "ra 1000000" "rb 1000000"
# Admin listeners (Go's profiler) of nodes n1-n3 and routers A and B,
# printed below, so that a profile can be taken while the rounds run.
ADMIN=("${NODE_ADMIN[@]}" "${ROUTER_ADMIN[ra]}" "${ROUTER_ADMIN[rb]}")
start_nodes "$TMP/cluster.yaml"
start_ab_routers "$TMP/cluster.yaml"
SERVERS=("nginx $NGINX $NGINX_PID" "A $RA $RA_PID")
[[ -z $BIN_B ]] || SERVERS+=("B $RB $RB_PID")
log "cluster: 3 nodes, router A $RA ($BIN)${BIN_B:+, router B $RB ($BIN_B)}"
log "profilers (/debug/pprof/): n1-n3 ${ADMIN[*]:0:3}, router A ${ADMIN[3]}${BIN_B:+, router B ${ADMIN[4]}}"

# ---- 3. links and warm caches ----------------------------------------------
log "creating $LINKS links through A"
"$BIN" bench -target "http://$RA" -workload redirect -c "$CONC" -links "$LINKS" -save-codes "$TMP/codes.txt" \
	-duration 1s -warmup 0s -progress=false >"$TMP/create.md"
for s in "${SERVERS[@]:1}"; do
	read -r name hp _ <<<"$s"
	log "warming router $name for $WARM"
	"$BIN" bench -target "http://$hp" -workload cold -c "$CONC" -codes-file "$TMP/codes.txt" \
		-duration "$WARM" -warmup 0s -progress=false >"$TMP/warm-$name.md"
done

# ---- 4. rounds -------------------------------------------------------------
# run ROUND NAME HOST:PORT PIDS: one run; appends a row to $TMP/runs.
run() {
	local round=$1 name=$2 hp=$3 pids=$4 s0 n0 g0 s1 n1 g1 row
	local codes=(-codes-file "$TMP/codes.txt")
	[[ $name == nginx ]] && codes=(-codes-from none -links "$LINKS")
	children_ticks
	g0=$CHILD_TICKS
	# shellcheck disable=SC2086 # pids is a list
	s0=$(cpu_ticks $pids) n0=$(cpu_ticks "${NODE_PIDS[@]}")
	"$BIN" bench -target "http://$hp" -workload redirect -c "$CONC" "${codes[@]}" -duration "$DURATION" \
		-warmup 0s -progress=false -label "$name" >"$TMP/run.md"
	# shellcheck disable=SC2086
	s1=$(cpu_ticks $pids) n1=$(cpu_ticks "${NODE_PIDS[@]}")
	children_ticks
	g1=$CHILD_TICKS
	row=$(grep '^| redirect ' "$TMP/run.md") || { cat "$TMP/run.md" >&2; return 1; }
	# | op | requests | ok | ops/s | p50 | p90 | p99 | ...
	awk -F'|' -v r="$round" -v n="$name" -v s=$((s1 - s0)) -v nd=$((n1 - n0)) -v g=$((g1 - g0)) -v hz="$TICK" '{
		gsub(/[ ,]/, "", $3); gsub(/[ ,]/, "", $5); gsub(/ /, "", $8)
		us = 1e6 / hz / $3
		printf "%s %s %s %s %.1f %.1f %.1f\n", r, n, $5, $8, s * us, nd * us, g * us
	}' <<<"$row" >>"$TMP/runs"
}
: >"$TMP/runs"
for i in $(seq 1 "$ROUNDS"); do
	order=("${SERVERS[@]}")
	if ((i % 2 == 0 && ${#order[@]} == 3)); then
		order=("${SERVERS[0]}" "${SERVERS[2]}" "${SERVERS[1]}")
	fi
	log "round $i of $ROUNDS (load average $(cut -d' ' -f1 /proc/loadavg))"
	for s in "${order[@]}"; do
		read -r name hp pid <<<"$s"
		pids=$pid
		[[ $name == nginx ]] && pids="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
		run "$i" "$name" "$hp" "$pids"
	done
done

# ---- 5. tables -------------------------------------------------------------
echo "### Cached redirect vs nginx, CPU per redirect ($ROUNDS rounds of $DURATION, -c $CONC, $LINKS codes)"
echo
echo "$(uname -m), $(nproc) CPUs, load average before the last round: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "A = $BIN${BIN_B:+; B = $BIN_B}."
echo
echo "| round | server | ops/s | p99 | vs nginx | server µs/redirect | nodes µs/redirect | generator µs/redirect |"
echo "|--:|---|--:|--:|--:|--:|--:|--:|"
awk '{ if ($2 == "nginx") base[$1] = $3 } { rows[NR] = $0 }
	END { for (i = 1; i <= NR; i++) { split(rows[i], f, " ")
		printf "| %s | %s | %s | %s | %.2fx | %s | %s | %s |\n", f[1], f[2], f[3], f[4], f[3] / base[f[1]], f[5], f[6], f[7] } }' "$TMP/runs"
echo
echo "| medians | ops/s | vs nginx (per round) | server µs/redirect | nodes µs/redirect | generator µs/redirect |"
echo "|---|--:|--:|--:|--:|--:|"
for s in "${SERVERS[@]}"; do
	name=${s%% *}
	awk -v n="$name" "$AWK_MEDIAN"'
		{ if ($2 == "nginx") base[$1] = $3 }
		$2 == n { k++; ops[k] = $3; ratio[k] = $3 / base[$1]; sv[k] = $5; nd[k] = $6; g[k] = $7 }
		END { printf "| %s | %.0f | %.2fx | %.1f | %.1f | %.1f |\n", n, median(ops, k), median(ratio, k), median(sv, k), median(nd, k), median(g, k) }' "$TMP/runs"
done
