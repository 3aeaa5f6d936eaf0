#!/usr/bin/env bash
# soak.sh DURATION: runs every robustness scenario of ./robust in a loop,
# each round with a fresh seed, for DURATION (go syntax: 90s, 10m, 1h30m).
# A failed round leaves its history (and, for a broken invariant, the
# checker's violations.txt and porcupine's linearizability.html) in
# soak-report/<scenario>-<seed>/; the whole test output goes to
# soak-report/soak.log. `make soak DURATION=10m` runs it.
set -euo pipefail

dur=${1:-10m}
root=$(cd "$(dirname "$0")/.." && pwd)
report=${LINKRAFT_REPORT_DIR:-$root/soak-report}

# seconds parses a go duration of whole hours, minutes and seconds.
seconds() {
	local d=$1 total=0
	while [[ $d =~ ^([0-9]+)(h|m|s)(.*)$ ]]; do
		case ${BASH_REMATCH[2]} in
		h) total=$((total + BASH_REMATCH[1] * 3600)) ;;
		m) total=$((total + BASH_REMATCH[1] * 60)) ;;
		s) total=$((total + BASH_REMATCH[1])) ;;
		esac
		d=${BASH_REMATCH[3]}
	done
	if [[ -n $d || $total -eq 0 ]]; then
		echo "soak: bad DURATION '$1' (want e.g. 90s, 10m, 1h30m)" >&2
		exit 2
	fi
	echo "$total"
}

secs=$(seconds "$dur")
mkdir -p "$report"
log=$report/soak.log
touch "$report/.soak-start" # reports newer than this are this soak's
echo "soak: every scenario in a loop for $dur; output in $log, failed rounds in $report/<scenario>-<seed>/"
# go test's own deadline: the soak, plus 15 minutes for the round running
# when it ends.
set +e
(cd "$root" && LINKRAFT_SOAK=$dur LINKRAFT_REPORT_DIR=$report \
	go test -count=1 -run '^TestSoak$' -timeout $((secs + 900))s -v ./robust/) >"$log" 2>&1 &
pid=$!
# Progress: one line per finished round.
tail -n +1 -f "$log" --pid=$pid | grep --line-buffered -E 'soak round|soak of|^(ok|FAIL)\s' || true
wait $pid
status=$?
set -e
if [[ $status -ne 0 ]]; then
	echo "soak: FAILED (exit $status). Reports of the failed rounds:"
	grep -hE 'FAILED with seed|report in|history saved in' "$log" | sed 's/^\s*/  /' || true
	find "$report" -mindepth 1 -maxdepth 1 -type d -newer "$report/.soak-start" -printf '  %p\n' 2>/dev/null || true
	exit "$status"
fi
echo "soak: passed; log in $log"
