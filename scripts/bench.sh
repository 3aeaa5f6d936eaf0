#!/usr/bin/env bash
# scripts/bench.sh: `make bench`. Measures an nginx redirect baseline and a
# local linkraft cluster with the same harness (`linkraft bench`), then prints
# one Markdown table with linkraft's redirect throughput as a ratio to nginx's.
#
#   1. nginx (installed with apt-get when missing) runs in the foreground on a
#      free 127.0.0.1 port from a config generated in a temp dir: every path
#      answers `301 https://example.com/target`, access log off, keep-alive on.
#      The `redirect` workload runs against it with synthetic codes
#      (-codes-from none), so the baseline drives the very same request loop.
#   2. bin/linkraft is built; a cluster file with free ports (3 nodes, 3 shards
#      of 3 replicas, router r1 with its cache, router r2 with cache_size: 0) is
#      written to the temp dir and started with `linkraft up`; the script waits
#      for /readyz on both routers.
#   3. Closed loop, -c $BENCH_C each: shorten, redirect (creates $BENCH_LINKS
#      links first and saves their codes), mixed (10:1), cold (uniform over the
#      same codes, against r2, so every redirect reaches a shard); then the
#      open loop: mixed at $BENCH_RATE requests/s (1,900 shortens/s + 19,000
#      redirects/s at the default 20,900), and at half that rate, with
#      -c $BENCH_OPEN_C connections. Each run also reports the CPU per
#      successful request, over its recorded window, of the generator, of
#      the router it drives and of the three nodes (nginx's master and
#      workers for the baseline): a second table.
#   4. Same window: $BENCH_ROUNDS rounds of nginx then linkraft's cached
#      redirect (r1, the codes of step 3), back to back, with the cluster up
#      in both; a second table gives each round's ratio and the medians. On a
#      shared machine this pairing, not step 2's single baseline, is the
#      comparison to read: the CPU left to the two servers changes from one
#      minute to the next.
#   5. Everything started here is stopped on exit (trap), the temp dir removed.
#
# Knobs (environment): BENCH_DURATION (8s), BENCH_WARMUP (2s), BENCH_C (64), BENCH_ROUNDS (3),
# BENCH_LINKS (100000), BENCH_RATE (20900), BENCH_OPEN_C (256), BENCH_OUT (a directory to keep the
# JSON results and the per-run tables in), BENCH_BASELINE_ONLY=1 (nginx only),
# LINKRAFT_BIN (a linkraft binary to use instead of building bin/linkraft), GO (go).
# The whole run takes about 2 minutes on a 2-core machine (with a warm build cache).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GO=${GO:-go}
DURATION=${BENCH_DURATION:-8s}
WARMUP=${BENCH_WARMUP:-2s}
CONC=${BENCH_C:-64}
LINKS=${BENCH_LINKS:-100000}
RATE=${BENCH_RATE:-20900}
# The open loop gets more connections: a shorten holds its connection for a
# Raft commit, and with few connections the redirects behind it would wait
# for a free one, which independent clients never do.
OPEN_CONC=${BENCH_OPEN_C:-256}
ROUNDS=${BENCH_ROUNDS:-3}
BIN=${LINKRAFT_BIN:-$ROOT/bin/linkraft}

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
make_tmp bench
results_dir "${BENCH_OUT:-}"

# run_bench NAME ARGS...: one harness run; its table goes to the results dir,
# its progress to stderr.
run_bench() {
	local name=$1
	shift
	log "bench $name: linkraft bench $*"
	"$BIN" bench -duration "$DURATION" -warmup "$WARMUP" -out "$RESULTS/$name.json" "$@" \
		>"$RESULTS/$name.md"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
STAT_BEFORE=$(stat_ticks)

# ---- 1. build --------------------------------------------------------------
build_linkraft always
if ! "$BIN" bench -h >/dev/null 2>&1; then
	echo "bin/linkraft has no bench subcommand (register runBench in cmd/linkraft/main.go)" >&2
	exit 1
fi

# ---- 2. nginx baseline -----------------------------------------------------
if ! command -v nginx >/dev/null 2>&1; then
	log "installing nginx"
	# Keep the package from starting a system service.
	policy_added=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
	fi
	{ apt-get install -y nginx-light || { apt-get update && { apt-get install -y nginx-light || apt-get install -y nginx; }; }; } >"$TMP/apt.log" 2>&1 ||
		{ tail -n 20 "$TMP/apt.log" >&2; [[ -n $policy_added ]] && rm -f /usr/sbin/policy-rc.d; exit 1; }
	[[ -n $policy_added ]] && rm -f /usr/sbin/policy-rc.d
fi
free_port
NGINX_PORT=$PORT
write_nginx_conf "$TMP/nginx" "127.0.0.1:$NGINX_PORT"
log "starting nginx $(nginx -v 2>&1 | sed 's/.*: //') on 127.0.0.1:$NGINX_PORT"
start nginx nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
NGINX_PID=${PIDS[-1]}
wait_status "127.0.0.1:$NGINX_PORT" /x 301 20 nginx
run_bench 01-nginx -label nginx -target "http://127.0.0.1:$NGINX_PORT" -workload redirect \
	-c "$CONC" -codes-from none -links "$LINKS" -cpu-of "nginx=$(pid_and_children "$NGINX_PID")"
# nginx keeps running: step 4 measures it again next to the cluster.

# ---- 3. the cluster --------------------------------------------------------
if [[ -n ${BENCH_BASELINE_ONLY:-} ]]; then
	"$BIN" bench -combine "$RESULTS/*.json" | tail -n +3
	exit 0
fi
CLUSTER=$TMP/cluster
mkdir -p "$CLUSTER"
write_cluster "$CLUSTER/cluster.yaml" "$CLUSTER/data" default "r1 1000000" "r2 0"
R1=${ROUTER_ADDR[r1]}
R2=${ROUTER_ADDR[r2]}
log "starting the cluster: 3 nodes, 3 shards, routers r1 (cache on) $R1 and r2 (cache off) $R2"
start up "$BIN" up --config "$CLUSTER/cluster.yaml"
wait_status "$R1" /readyz 200 90 "router r1"
wait_status "$R2" /readyz 200 30 "router r2"
up_children "${PIDS[-1]}"
[[ -n $UP_NODES && -n ${UP_ROUTER[r1]:-} && -n ${UP_ROUTER[r2]:-} ]] ||
	{ echo "could not find the nodes and routers r1, r2 under linkraft up" >&2; exit 1; }
# Each run also reports the CPU per request of the router it drives and of
# the three nodes (and always the generator's own).
CPU_R1=(-cpu-of "router=${UP_ROUTER[r1]}" -cpu-of "nodes=$UP_NODES")
CPU_R2=(-cpu-of "router=${UP_ROUTER[r2]}" -cpu-of "nodes=$UP_NODES")

# ---- 4. the workloads ------------------------------------------------------
CODES=$TMP/codes.txt
run_bench 02-shorten -label linkraft -target "http://$R1" -workload shorten -c "$CONC" "${CPU_R1[@]}"
run_bench 03-redirect -label linkraft -target "http://$R1" -workload redirect -c "$CONC" \
	-links "$LINKS" -save-codes "$CODES" "${CPU_R1[@]}"
run_bench 04-mixed -label linkraft -target "http://$R1" -workload mixed -c "$CONC" -codes-file "$CODES" "${CPU_R1[@]}"
run_bench 05-cold -label "linkraft r2 cache off" -target "http://$R2" -workload cold -c "$CONC" \
	-codes-file "$CODES" "${CPU_R2[@]}"
run_bench 06-mixed-open -label "linkraft open loop" -target "http://$R1" -workload mixed -c "$OPEN_CONC" \
	-rate "$RATE" -codes-file "$CODES" "${CPU_R1[@]}"
run_bench 07-mixed-open-half -label "linkraft open loop" -target "http://$R1" -workload mixed -c "$OPEN_CONC" \
	-rate "$((RATE / 2))" -codes-file "$CODES" "${CPU_R1[@]}"

# ---- 4b. same window: nginx and the cached redirect, alternately ----------
# ops_per_s of a result file: the first one is the run's total.
ops_of() { grep -m1 '"ops_per_s"' "$1" | sed 's/.*: *//; s/,.*//'; }
p99_of() { grep -m1 '"p99"' "$1" | sed 's/.*: *//; s/,.*//'; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
ALT=$RESULTS/same-window
mkdir -p "$ALT"
for i in $(seq 1 "$ROUNDS"); do
	log "same window, round $i of $ROUNDS: nginx, then linkraft's cached redirect"
	"$BIN" bench -duration "$DURATION" -warmup "$WARMUP" -out "$ALT/nginx-$i.json" -label "nginx $i" \
		-target "http://127.0.0.1:$NGINX_PORT" -workload redirect -c "$CONC" -codes-from none -links "$LINKS" >/dev/null
	"$BIN" bench -duration "$DURATION" -warmup "$WARMUP" -out "$ALT/linkraft-$i.json" -label "linkraft $i" \
		-target "http://$R1" -workload redirect -c "$CONC" -codes-file "$CODES" >/dev/null
done

# ---- 5. the tables ---------------------------------------------------------
echo
echo "## linkraft bench: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -sr);" \
	"$("$GO" version | cut -d' ' -f3); nginx $(nginx -v 2>&1 | sed 's/.*\///');" \
	"load average $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown) after" \
	"(the harness, nginx and the cluster share the machine); CPU steal during the runs $(steal_percent "$STAT_BEFORE" "$(stat_ticks)")."
echo "Each run: ${WARMUP} warmup, ${DURATION} recorded, -c $CONC (open loop: -c $OPEN_CONC); linkraft links: $LINKS created by the redirect run" \
	"(cold draws uniformly over the same codes through r2, whose cache is off)."
echo
"$BIN" bench -combine "$RESULTS/*.json" -baseline nginx | tail -n +3
setup=$(grep -o '"per_s": [0-9.]*' "$RESULTS/03-redirect.json" | head -1 | sed 's/.*: //')
[[ -n $setup ]] && echo && echo "The redirect run created its $LINKS links at ${setup%.*} creates/s (-setup-c 128)."

echo
echo "### Cached redirect vs nginx in the same window ($ROUNDS rounds, nginx then linkraft r1, -c $CONC)"
echo
echo "| round | nginx ops/s | nginx p99 | linkraft ops/s | linkraft p99 | ratio |"
echo "|--:|--:|--:|--:|--:|--:|"
ratios=() nops=() lops=() lp99=()
for i in $(seq 1 "$ROUNDS"); do
	n=$(ops_of "$ALT/nginx-$i.json") l=$(ops_of "$ALT/linkraft-$i.json")
	np=$(p99_of "$ALT/nginx-$i.json") lp=$(p99_of "$ALT/linkraft-$i.json")
	r=$(awk -v l="$l" -v n="$n" 'BEGIN {printf "%.2f", (n > 0 ? l / n : 0)}')
	ratios+=("$r") nops+=("$n") lops+=("$l") lp99+=("$lp")
	printf '| %d | %.0f | %.2fms | %.0f | %.2fms | %s× |\n' "$i" "$n" "$(awk -v v="$np" 'BEGIN {print v/1000}')" \
		"$l" "$(awk -v v="$lp" 'BEGIN {print v/1000}')" "$r"
done
printf '| median | %.0f | | %.0f | %.2fms | %s× |\n' "$(printf '%s\n' "${nops[@]}" | median)" \
	"$(printf '%s\n' "${lops[@]}" | median)" "$(awk -v v="$(printf '%s\n' "${lp99[@]}" | median)" 'BEGIN {print v/1000}')" \
	"$(printf '%s\n' "${ratios[@]}" | median)"
# nginx does the same work every round: a spread between its rounds is the
# machine's speed drifting (a shared host), which the ratios of a round
# survive and the run's other figures do not.
spread=$(printf '%s\n' "${nops[@]}" | awk 'NR == 1 { lo = hi = $1 } { if ($1 < lo) lo = $1; if ($1 > hi) hi = $1 }
	END { printf "%.2f", (lo > 0 ? hi / lo : 0) }')
if awk -v s="$spread" 'BEGIN { exit !(s > 1.25) }'; then
	echo
	echo "nginx's rounds differ ${spread}x from slowest to fastest: this machine's speed drifted during the run, so compare" \
		"the ratios of each round rather than absolute figures across runs or workloads."
fi
exit 0
