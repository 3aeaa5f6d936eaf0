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
TICK=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/linkraft-hit.XXXXXX")
PIDS=()  # every process started here, stopped in reverse order on exit
NAMES=()

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${PIDS[$i]}" "${NAMES[$i]}"
	done
	if [[ $rc -ne 0 ]]; then
		for f in "$TMP"/*.log "$TMP"/nginx/error.log; do
			[[ -s $f ]] && { echo "---- last lines of $f ----" >&2; tail -n 20 "$f" >&2; }
		done
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: runs CMD in its own session, logging to $TMP/NAME.log.
start() {
	local name=$1
	shift
	setsid "$@" >"$TMP/$name.log" 2>&1 &
	PIDS+=("$!")
	NAMES+=("$name")
}

# wait_http HOST:PORT PATH SECONDS NAME: until GET PATH answers 200 or 301.
wait_http() {
	local hp=$1 path=$2 secs=$3 name=$4 line=
	for _ in $(seq 1 $((secs * 5))); do
		if { exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}"; } 2>/dev/null; then
			printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hp" >&3
			IFS= read -r -t 5 line <&3 || line=
			exec 3<&- 3>&-
			[[ $line == *" 200 "* || $line == *" 301 "* ]] && return 0
		fi
		sleep 0.2
	done
	echo "$name: GET $path on $hp did not answer 200/301 within ${secs}s (last: $line)" >&2
	return 1
}

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

# children_ticks: the user + system ticks of this shell's waited-for
# children so far (the second line of the `times` builtin). It must run in
# this shell, not in a command substitution (a subshell has children of
# its own), so it sets CHILD_TICKS.
CHILD_TICKS=0
children_ticks() {
	times >"$TMP/times"
	CHILD_TICKS=$(awk -v hz="$TICK" 'function sec(x, m) { split(x, m, "m"); sub("s", "", m[2]); return m[1] * 60 + m[2] }
		NR == 2 { printf "%d\n", (sec($1) + sec($2)) * hz + 0.5 }' "$TMP/times")
}

if [[ -z ${LINKRAFT_BIN:-} && ! -x $BIN ]]; then
	log "building bin/linkraft"
	CGO_ENABLED=0 "$GO" build -o "$BIN" ./cmd/linkraft
fi
command -v nginx >/dev/null || { echo "nginx is not installed (scripts/bench.sh installs it)" >&2; exit 1; }

# ---- 1. nginx --------------------------------------------------------------
free_port
NGINX=127.0.0.1:$PORT
write_nginx_conf "$TMP/nginx" "$NGINX"
start nginx nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
NGINX_PID=${PIDS[-1]}
wait_http "$NGINX" /x 20 nginx

# ---- 2. the cluster --------------------------------------------------------
NODE_PORTS=()
for _ in 1 2 3 4 5 6; do
	free_port
	NODE_PORTS+=("$PORT")
done
free_port
RA=127.0.0.1:$PORT
free_port
RB=127.0.0.1:$PORT
# Admin listeners (Go's profiler) of nodes n1-n3 and routers A and B,
# printed below, so that a profile can be taken while the rounds run.
ADMIN=()
for _ in 1 2 3 4 5; do
	free_port
	ADMIN+=("127.0.0.1:$PORT")
done
{
	printf 'cluster:\n  partitions: 1024\n  code_length: 7\n  redirect_status: 301\n  click_flush_interval: 1s\n  cache_ttl: 1h\n'
	printf 'nodes:\n'
	for i in 1 2 3; do
		printf '  - id: n%d\n    raft_addr: 127.0.0.1:%d\n    rpc_addr: 127.0.0.1:%d\n    data_dir: %s/data/n%d\n    admin_addr: %s\n' \
			"$i" "${NODE_PORTS[$((2 * i - 2))]}" "${NODE_PORTS[$((2 * i - 1))]}" "$TMP" "$i" "${ADMIN[$((i - 1))]}"
	done
	printf 'shards:\n'
	for i in 1 2 3; do
		printf '  - id: %d\n    replicas: [n1, n2, n3]\n' "$i"
	done
	printf 'routers:\n'
	for r in "ra $RA ${ADMIN[3]}" "rb $RB ${ADMIN[4]}"; do
		read -r id hp adm <<<"$r"
		printf '  - id: %s\n    listen: %s\n    base_url: http://%s\n    cache_size: 1000000\n    admin_addr: %s\n' "$id" "$hp" "$hp" "$adm"
	done
} >"$TMP/cluster.yaml"
NODE_PIDS=()
for i in 1 2 3; do
	start "n$i" "$BIN" node --config "$TMP/cluster.yaml" --id "n$i"
	NODE_PIDS+=("${PIDS[-1]}")
done
start ra "$BIN" router --config "$TMP/cluster.yaml" --id ra
RA_PID=${PIDS[-1]}
SERVERS=("nginx $NGINX $NGINX_PID" "A $RA $RA_PID")
if [[ -n $BIN_B ]]; then
	start rb "$BIN_B" router --config "$TMP/cluster.yaml" --id rb
	SERVERS+=("B $RB ${PIDS[-1]}")
fi
log "cluster: 3 nodes, router A $RA ($BIN)${BIN_B:+, router B $RB ($BIN_B)}"
log "profilers (/debug/pprof/): n1-n3 ${ADMIN[*]:0:3}, router A ${ADMIN[3]}${BIN_B:+, router B ${ADMIN[4]}}"
wait_http "$RA" /readyz 90 "router A"
[[ -z $BIN_B ]] || wait_http "$RB" /readyz 30 "router B"

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
	# shellcheck disable=SC2086 # pids is a list
	children_ticks
	g0=$CHILD_TICKS
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
	awk -v n="$name" 'function median(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
		{ if ($2 == "nginx") base[$1] = $3 }
		$2 == n { k++; ops[k] = $3; ratio[k] = $3 / base[$1]; sv[k] = $5; nd[k] = $6; g[k] = $7 }
		END { printf "| %s | %.0f | %.2fx | %.1f | %.1f | %.1f |\n", n, median(ops, k), median(ratio, k), median(sv, k), median(nd, k), median(g, k) }' "$TMP/runs"
done
