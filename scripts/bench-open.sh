#!/usr/bin/env bash
# scripts/bench-open.sh: the open loop of issue 5 (1,900 shortens/s +
# 19,000 redirects/s, and half of it), for an A/B of two router builds in
# the same window, with where the tail comes from inside each click flush
# interval.
#
#   1. nginx runs from the shared config (scripts/lib.sh) and takes the
#      redirect workload in open loop at each rate: the floor the harness
#      itself imposes on this machine.
#   2. A cluster of 3 nodes and 3 shards of 3 replicas (flushing clicks
#      every OPEN_FLUSH) with router A ($LINKRAFT_BIN) and, when
#      OPEN_BIN_B is set, router B (OPEN_BIN_B) against the same nodes.
#      Each process is started on its own so that its CPU can be read.
#   3. OPEN_LINKS links are created through A, and every router is warmed
#      with the cold workload, as `make bench` has its codes before the
#      open loop.
#   4. OPEN_ROUNDS rounds; in each, for every rate of OPEN_RATES, nginx,
#      then A and B (B first every other round): `linkraft bench -workload
#      mixed -rate R -c OPEN_C` for OPEN_DURATION. Per run: redirect and
#      shorten p50/p99/p99.9, and the CPU per answered request of the
#      router (nginx: master and workers) and of the three nodes.
#   5. With OPEN_PHASE=1, one more run of each router at the first rate,
#      OPEN_PHASE_SECONDS (30) long, while scripts/phase samples every
#      process's CPU every 10 ms and probes one redirect every 2 ms; both
#      are folded over the flush interval (20 bins, bin 0 at the nodes'
#      peak). OPEN_FLUSH must then be whole seconds.
#
# Knobs (environment): LINKRAFT_BIN (default bin/linkraft, built when
# missing), OPEN_BIN_B (none), OPEN_RATES ("10450 20900"), OPEN_ROUNDS (3),
# OPEN_DURATION (8s), OPEN_WARMUP (2s), OPEN_C (256), OPEN_LINKS (100000),
# OPEN_FLUSH (1s), OPEN_PHASE (0), OPEN_PHASE_SECONDS (30), OPEN_OUT (a directory to keep the JSON
# results and samples in). About 1 minute of setup plus OPEN_ROUNDS x
# rates x (2 or 3) x (OPEN_WARMUP + OPEN_DURATION).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GO=${GO:-go}
BIN=${LINKRAFT_BIN:-$ROOT/bin/linkraft}
BIN_B=${OPEN_BIN_B:-}
read -r -a RATES <<<"${OPEN_RATES:-10450 20900}"
ROUNDS=${OPEN_ROUNDS:-3}
DURATION=${OPEN_DURATION:-8s}
WARMUP=${OPEN_WARMUP:-2s}
CONC=${OPEN_C:-256}
LINKS=${OPEN_LINKS:-100000}
FLUSH=${OPEN_FLUSH:-1s}

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
make_tmp open
results_dir "${OPEN_OUT:-}"

build_linkraft if-missing
# scripts/phase reads the JSON results and, with OPEN_PHASE=1, samples,
# probes and folds.
PHASE=$TMP/phase
CGO_ENABLED=0 "$GO" build -o "$PHASE" ./scripts/phase

# ---- 1. nginx --------------------------------------------------------------
start_nginx

# ---- 2. the cluster --------------------------------------------------------
write_cluster "$TMP/cluster.yaml" "$TMP/data" default "ra 1000000" "rb 1000000"
sed -i "s/click_flush_interval: 1s/click_flush_interval: $FLUSH/" "$TMP/cluster.yaml"
start_nodes "$TMP/cluster.yaml"
start_ab_routers "$TMP/cluster.yaml"
SERVERS=("A $RA $RA_PID")
[[ -z $BIN_B ]] || SERVERS+=("B $RB $RB_PID")
log "cluster: 3 nodes, click_flush_interval $FLUSH, router A $RA ($BIN)${BIN_B:+, router B $RB ($BIN_B)}"

# ---- 3. links and warm caches ----------------------------------------------
log "creating $LINKS links through A"
"$BIN" bench -target "http://$RA" -workload redirect -c 64 -links "$LINKS" -save-codes "$TMP/codes.txt" \
	-duration 1s -warmup 0s -progress=false >"$TMP/create.md"
for s in "${SERVERS[@]}"; do
	read -r name hp _ <<<"$s"
	log "warming router $name"
	"$BIN" bench -target "http://$hp" -workload cold -c 64 -codes-file "$TMP/codes.txt" \
		-duration 5s -warmup 0s -progress=false >"$TMP/warm-$name.md"
done

# ---- 4. rounds -------------------------------------------------------------
# us_of FILE OP FIELD: a latency of op OP (redirect, shorten) from a JSON
# result, in microseconds; 0 when the run had no such op.
us_of() { "$PHASE" field -or 0 "$1" ops "$2" latency_us "$3"; }
ok_of() { "$PHASE" field "$1" total ok; }
# run ROUND RATE NAME HOST:PORT PIDS: one run; appends a row to $TMP/runs.
run() {
	local round=$1 rate=$2 name=$3 hp=$4 pids=$5 s0 n0 s1 n1 out wl=mixed
	local codes=(-codes-file "$TMP/codes.txt")
	if [[ $name == nginx ]]; then
		codes=(-codes-from none -links "$LINKS")
		wl=redirect
	fi
	out=$RESULTS/$rate-$name-$round.json
	# shellcheck disable=SC2086 # pids is a list
	s0=$(cpu_ticks $pids) n0=$(cpu_ticks "${NODE_PIDS[@]}")
	"$BIN" bench -target "http://$hp" -workload "$wl" -rate "$rate" -c "$CONC" "${codes[@]}" \
		-duration "$DURATION" -warmup "$WARMUP" -progress=false -label "$name" -out "$out" >/dev/null
	# shellcheck disable=SC2086
	s1=$(cpu_ticks $pids) n1=$(cpu_ticks "${NODE_PIDS[@]}")
	# The CPU covers warmup and recorded time: per answered request, taking
	# the warmup's answers at the recorded run's rate.
	awk -v r="$round" -v rate="$rate" -v n="$name" -v ok="$(ok_of "$out")" -v s=$((s1 - s0)) -v nd=$((n1 - n0)) \
		-v hz="$TICK" -v d="${DURATION%s}" -v w="${WARMUP%s}" \
		-v rp50="$(us_of "$out" redirect p50)" -v rp99="$(us_of "$out" redirect p99)" -v rp999="$(us_of "$out" redirect p99_9)" \
		-v sp50="$(us_of "$out" shorten p50)" -v sp99="$(us_of "$out" shorten p99)" -v sp999="$(us_of "$out" shorten p99_9)" \
		'BEGIN { req = ok / d * (d + w); us = req > 0 ? 1e6 / hz / req : 0
		printf "%s %s %s %.0f %.2f %.2f %.2f %.2f %.2f %.2f %.1f %.1f\n", r, rate, n, ok / d,
			rp50 / 1000, rp99 / 1000, rp999 / 1000, sp50 / 1000, sp99 / 1000, sp999 / 1000, s * us, nd * us }' >>"$TMP/runs"
}
: >"$TMP/runs"
for i in $(seq 1 "$ROUNDS"); do
	for rate in "${RATES[@]}"; do
		order=("nginx $NGINX $NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')" "${SERVERS[@]}")
		if ((i % 2 == 0 && ${#order[@]} == 3)); then
			order=("${order[0]}" "${SERVERS[1]}" "${SERVERS[0]}")
		fi
		log "round $i of $ROUNDS, $rate/s (load average $(cut -d' ' -f1 /proc/loadavg))"
		for s in "${order[@]}"; do
			read -r name hp pids <<<"$s"
			run "$i" "$rate" "$name" "$hp" "$pids"
		done
	done
done

# ---- 5. phase of the flush interval ---------------------------------------
if [[ ${OPEN_PHASE:-0} == 1 ]]; then
	secs=${OPEN_PHASE_SECONDS:-30}
	code=$(head -1 "$TMP/codes.txt")
	for s in "${SERVERS[@]}"; do
		read -r name hp pid <<<"$s"
		log "phase run of router $name at ${RATES[0]}/s"
		"$PHASE" sample "$RESULTS/phase-$name.samples" "$secs" "router=$pid" \
			"n1=${NODE_PIDS[0]}" "n2=${NODE_PIDS[1]}" "n3=${NODE_PIDS[2]}" &
		sp=$!
		"$PHASE" probe "$RESULTS/phase-$name.probe" "$secs" "$hp" "$code" &
		pp=$!
		"$BIN" bench -target "http://$hp" -workload mixed -rate "${RATES[0]}" -c "$CONC" -codes-file "$TMP/codes.txt" \
			-duration "$((secs - 2))s" -warmup 2s -progress=false -label "$name" >/dev/null
		wait "$sp" "$pp"
	done
fi

# ---- 6. tables -------------------------------------------------------------
echo "### Open loop, mixed 10:1 ($ROUNDS rounds of $WARMUP + $DURATION, -c $CONC, $LINKS codes, click_flush_interval $FLUSH)"
echo
echo "$(uname -m), $(nproc) CPUs, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "A = $BIN${BIN_B:+; B = $BIN_B}. nginx runs the redirect workload alone at the same rate."
echo
echo "| round | rate | server | ok/s | redirect p50 | p99 | p99.9 | shorten p50 | p99 | p99.9 | server µs/req | nodes µs/req |"
echo "|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }' "$TMP/runs"
echo
echo "Medians (ms; CPU in µs per request):"
echo
echo "| rate | server | redirect p50 | p99 | p99.9 | shorten p50 | p99 | p99.9 | server µs/req | nodes µs/req |"
echo "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|"
for rate in "${RATES[@]}"; do
	for name in nginx A B; do
		awk -v rt="$rate" -v n="$name" "$AWK_MEDIAN"'
			$2 == rt && $3 == n { k++; for (j = 5; j <= 12; j++) v[j, k] = $j }
			END { if (!k) exit; printf "| %s | %s |", rt, n
				for (j = 5; j <= 12; j++) { for (i = 1; i <= k; i++) a[i] = v[j, i]; printf " %s |", median(a, k) }
				printf "\n" }' "$TMP/runs"
	done
done
cp "$TMP/runs" "$RESULTS/runs.txt"
if [[ ${OPEN_PHASE:-0} == 1 ]]; then
	for s in "${SERVERS[@]}"; do
		name=${s%% *}
		echo
		echo "Router $name at ${RATES[0]}/s, folded over the ${FLUSH} flush interval:"
		echo
		"$PHASE" fold -hz "$TICK" "${FLUSH%s}" "$RESULTS/phase-$name.samples" "$RESULTS/phase-$name.probe"
	done
fi
