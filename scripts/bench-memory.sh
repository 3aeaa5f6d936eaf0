#!/usr/bin/env bash
# scripts/bench-memory.sh: the memory of a live router holding MEM_LINKS
# cached links (issue 5: "a router with a 1,000,000-entry cache stays under
# 512 MiB RSS"), filled over HTTP as a production router fills, not by a Go
# benchmark.
#
#   1. A cluster of 3 nodes and 3 shards of 3 replicas (cache_ttl 1h, so no
#      entry expires during the run) and one router with cache_size
#      MEM_CACHE and an admin listener (/debug/pprof/).
#   2. MEM_LINKS links (URLs of 60-100 bytes, as BenchmarkCacheMemory uses)
#      are created through the router's bulk endpoint, MEM_BATCH a request,
#      MEM_P requests in flight. The router caches every link it creates;
#      GET /healthz reports the cache's entries, which the script checks.
#   3. Every code is redirected once through the same router (curl, MEM_P
#      keep-alive connections): each entry is resolved and held, as after
#      a cold workload, and every answer must be a 301.
#   4. The router's VmRSS and VmHWM (/proc/PID/status), its heap in use and
#      its live heap after a forced GC (/debug/pprof/heap?debug=1, the
#      runtime.MemStats lines), and what each entry adds to RSS and to the
#      live heap over the empty router (read before the fill; its cache
#      index is allocated at start, so part of the cache is in the base).
#   5. `linkraft bench -workload redirect` (Zipf over the saved codes) for
#      MEM_LOAD_DURATION at -c MEM_C, sampling VmRSS every 0.2 s: the
#      garbage of steady traffic is where GC headroom shows.
#   6. A Markdown table. With MEM_PROFILE=FILE, the router's heap profile
#      (inuse_space, after a GC) is also kept in FILE for `go tool pprof`.
#
# Knobs (environment): LINKRAFT_BIN (default bin/linkraft, built when
# missing), MEM_LINKS (1000000), MEM_CACHE (1000000), MEM_BATCH (1000, the
# most a bulk create takes), MEM_P (4), MEM_LOAD_DURATION (10s), MEM_C
# (64), MEM_PROFILE (none). Needs curl. At 1,000,000 links it takes a few
# minutes of full load on 2 CPUs (the nodes' Raft writes dominate).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GO=${GO:-go}
BIN=${LINKRAFT_BIN:-$ROOT/bin/linkraft}
LINKS=${MEM_LINKS:-1000000}
CACHE=${MEM_CACHE:-1000000}
BATCH=${MEM_BATCH:-1000}
PAR=${MEM_P:-4}
LOAD_DURATION=${MEM_LOAD_DURATION:-10s}
CONC=${MEM_C:-64}
PROFILE=${MEM_PROFILE:-}

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
make_tmp mem

# kib FIELD: FIELD (VmRSS:, VmHWM:) of the router's /proc status, in KiB.
kib() { awk -v f="$1" '$1 == f { print $2 }' "/proc/$ROUTER_PID/status"; }

# mib KIB: KiB as MiB with one decimal.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# cache_entries: the router's cache entries, from GET /healthz.
cache_entries() {
	curl -fsS "http://$ROUTER/healthz" | grep -o '"entries":[0-9]*' | cut -d: -f2
}

# memstat NAME [gc]: a runtime.MemStats field (HeapInuse, HeapAlloc, Sys,
# ...) in bytes from the router's heap profile; with gc, after a GC.
memstat() {
	local q=debug=1
	[[ ${2:-} == gc ]] && q="gc=1&debug=1"
	curl -fsS "http://$ADMIN/debug/pprof/heap?$q" | awk -v f="$1" '$1 == "#" && $2 == f && $3 == "=" { print $4; exit }'
}

if ! command -v curl >/dev/null; then
	echo "curl is not installed" >&2
	exit 1
fi
build_linkraft if-missing
((BATCH >= 1 && BATCH <= 1000)) || { echo "MEM_BATCH must be 1 to 1000 (a bulk create's limit)" >&2; exit 1; }

# ---- 1. the cluster --------------------------------------------------------
write_cluster "$TMP/cluster.yaml" "$TMP/data" 1h "r1 $CACHE"
ROUTER=${ROUTER_ADDR[r1]}
ADMIN=${ROUTER_ADMIN[r1]}
start_nodes "$TMP/cluster.yaml"
start r1 "$BIN" router --config "$TMP/cluster.yaml" --id r1
ROUTER_PID=${PIDS[-1]}
log "cluster: 3 nodes, router $ROUTER (admin $ADMIN, cache_size $CACHE, $BIN)"
wait_status "$ROUTER" /readyz 200 90 router
EMPTY_RSS=$(kib VmRSS:)
EMPTY_HEAP=$(memstat HeapAlloc gc)

# ---- 2. fill through the bulk endpoint -------------------------------------
# One body file per request: {"links":[{"url":"..."},...]}, URLs of 60 to
# 100 bytes, distinct (the link number is in the path).
BATCHES=$(((LINKS + BATCH - 1) / BATCH))
mkdir -p "$TMP/bulk"
awk -v n="$LINKS" -v b="$BATCH" -v dir="$TMP/bulk" 'BEGIN {
	srand(1)
	a = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for (i = 0; i < n; i++) {
		if (i % b == 0) {
			if (i > 0) { printf "]}\n" > f; close(f) }
			f = sprintf("%s/%07d.json", dir, i / b)
			printf "{\"links\":[" > f
		} else {
			printf "," > f
		}
		u = sprintf("https://shop.example-%d.com/collections/item-%d?utm_source=news&ref=", int(rand() * 1000), i)
		want = 60 + int(rand() * 41)
		while (length(u) < want) u = u substr(a, 1 + int(rand() * 62), 1)
		printf "{\"url\":\"%s\"}", u > f
	}
	printf "]}\n" > f
	close(f)
}'
log "creating $LINKS links in $BATCHES bulk creates of up to $BATCH, $PAR in flight"
export ROUTER
fill_start=$(date +%s.%N)
# Each curl keeps one connection for its share of the files (--next).
# shellcheck disable=SC2016 # the inner script expands its own variables
find "$TMP/bulk" -name '*.json' -print0 | sort -z | xargs -0 -P "$PAR" -n 50 bash -c '
	args=()
	for f; do
		args+=(--next -fsS -H "Content-Type: application/json" --data-binary "@$f" -o "$f.out" "http://$ROUTER/api/v1/links/bulk")
	done
	curl "${args[@]:1}"' bash
fill_secs=$(awk -v a="$fill_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
# Every answer must count all its items as succeeded; the codes, in order.
failed=$(cat "$TMP"/bulk/*.out | grep -o '"failed":[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }')
cat "$TMP"/bulk/*.out | grep -o '"link":{"code":"[^"]*"' | cut -d'"' -f6 >"$TMP/codes.txt"
made=$(wc -l <"$TMP/codes.txt")
if ((failed != 0 || made != LINKS)); then
	echo "bulk creates: $made links made, $failed failed, want $LINKS" >&2
	exit 1
fi
rm -rf "$TMP/bulk"
FILL_ENTRIES=$(cache_entries)
FILL_RSS=$(kib VmRSS:)
log "created $made links in ${fill_secs}s; the router caches $FILL_ENTRIES (RSS $(mib "$FILL_RSS") MiB)"

# ---- 3. every code redirected once -----------------------------------------
log "redirecting each of the $made codes once"
split -n "l/$PAR" "$TMP/codes.txt" "$TMP/pass."
for f in "$TMP"/pass.*; do
	awk -v hp="$ROUTER" '{ printf "url = \"http://%s/%s\"\noutput = \"/dev/null\"\n", hp, $1 }' "$f" >"$f.curl"
done
pass_start=$(date +%s.%N)
CURLS=()
for f in "$TMP"/pass.*.curl; do
	curl -sS -K "$f" -w '%{http_code}\n' >"$f.status" &
	CURLS+=("$!")
done
for p in "${CURLS[@]}"; do
	wait "$p" || { echo "redirect pass: curl failed" >&2; exit 1; }
done
pass_secs=$(awk -v a="$pass_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
redirected=$(cat "$TMP"/pass.*.status | grep -c '^301$' || true)
if ((redirected != made)); then
	echo "redirect pass: $redirected of $made answered 301:" >&2
	cat "$TMP"/pass.*.status | sort | uniq -c >&2
	exit 1
fi
ENTRIES=$(cache_entries)
RSS=$(kib VmRSS:)
HWM=$(kib VmHWM:)
INUSE=$(memstat HeapInuse)
SYS=$(memstat Sys)
LIVE=$(memstat HeapAlloc gc)
log "redirected $redirected codes in ${pass_secs}s; the router caches $ENTRIES"
if [[ -n $PROFILE ]]; then
	curl -fsS -o "$PROFILE" "http://$ADMIN/debug/pprof/heap?gc=1"
	log "heap profile in $PROFILE (go tool pprof -sample_index=inuse_space $BIN $PROFILE)"
fi

# ---- 4. RSS under redirect load --------------------------------------------
log "redirect load for $LOAD_DURATION at -c $CONC, sampling RSS"
"$BIN" bench -target "http://$ROUTER" -workload redirect -c "$CONC" -codes-file "$TMP/codes.txt" \
	-duration "$LOAD_DURATION" -warmup 0s -progress=false -label "memory" >"$TMP/load.md" &
BENCH_PID=$!
LOAD_MAX=0
while kill -0 "$BENCH_PID" 2>/dev/null; do
	r=$(kib VmRSS:)
	((r > LOAD_MAX)) && LOAD_MAX=$r
	sleep 0.2
done
wait "$BENCH_PID"
LOAD_ROW=$(grep '^| redirect ' "$TMP/load.md") || { cat "$TMP/load.md" >&2; exit 1; }
LOAD_OPS=$(awk -F'|' '{ gsub(/ /, "", $5); print $5 }' <<<"$LOAD_ROW")
LOAD_END=$(kib VmRSS:)
LOAD_HWM=$(kib VmHWM:)
LOAD_INUSE=$(memstat HeapInuse)
LOAD_ENTRIES=$(cache_entries)

# ---- 5. table --------------------------------------------------------------
# per BYTES BASE N: (BYTES - BASE) / N, what each of N entries adds.
per() { awk -v b="$1" -v z="$2" -v n="$3" 'BEGIN { printf "%.0f", (b - z) / n }'; }
echo "### A live router holding $ENTRIES cached links (cache_size $CACHE)"
echo
echo "$(uname -m), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo "$made links created in ${fill_secs}s ($BATCHES bulk creates of up to $BATCH, $PAR in flight); each redirected once in ${pass_secs}s;"
echo "then \`linkraft bench -workload redirect -c $CONC\` for $LOAD_DURATION over the same codes: $LOAD_OPS redirects/s."
echo
echo "| point | links | cache entries | RSS MiB | peak RSS (VmHWM) MiB | heap in use MiB | live heap after GC MiB | RSS B/entry over empty | live heap B/entry over empty |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
printf '| empty router | 0 | 0 | %s | | | %s | | |\n' "$(mib "$EMPTY_RSS")" "$(mib $((EMPTY_HEAP / 1024)))"
printf '| after the bulk fill | %d | %d | %s | | | | | |\n' "$made" "$FILL_ENTRIES" "$(mib "$FILL_RSS")"
printf '| after one redirect of each | %d | %d | %s | %s | %s | %s | %s | %s |\n' "$made" "$ENTRIES" "$(mib "$RSS")" "$(mib "$HWM")" \
	"$(mib $((INUSE / 1024)))" "$(mib $((LIVE / 1024)))" "$(per $((RSS * 1024)) $((EMPTY_RSS * 1024)) "$ENTRIES")" \
	"$(per "$LIVE" "$EMPTY_HEAP" "$ENTRIES")"
printf '| redirect load (max sampled RSS) | %d | %d | %s | %s | %s | | %s | |\n' "$made" "$LOAD_ENTRIES" "$(mib "$LOAD_MAX")" "$(mib "$LOAD_HWM")" \
	"$(mib $((LOAD_INUSE / 1024)))" "$(per $((LOAD_MAX * 1024)) $((EMPTY_RSS * 1024)) "$LOAD_ENTRIES")"
echo
echo "Go runtime Sys (all memory the runtime obtained from the OS) after the pass: $(mib $((SYS / 1024))) MiB; RSS at the end of the load: $(mib "$LOAD_END") MiB."
