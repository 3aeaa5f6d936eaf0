# scripts/lib.sh: shell helpers shared by the benchmark scripts
# (scripts/bench.sh, scripts/bench-writes.sh). Sourced, not run; it sets
# shell variables (USED_PORTS, PORT, EPHEMERAL_LO) in the sourcing shell.
# shellcheck shell=bash

log() { printf '==> %s\n' "$*" >&2; }

# stop_pid PID NAME [SECONDS]: SIGTERM, wait up to SECONDS (20), then SIGKILL
# the process group. An empty or already gone PID is a no-op.
stop_pid() {
	local pid=$1 name=$2 secs=${3:-20}
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 $((secs * 10))); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	log "$name did not stop within ${secs}s: killing its process group"
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# free_port sets PORT to a TCP port on 127.0.0.1 that no socket uses and
# that this script has not handed out yet. Ports come from below the kernel's
# ephemeral range, so an outgoing connection (the harness makes many) cannot
# take one between the check and the bind. (It sets a variable rather than
# printing, so that it does not run in a subshell that would forget USED_PORTS.)
USED_PORTS=" "
PORT=
EPHEMERAL_LO=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
((EPHEMERAL_LO > 12000)) || EPHEMERAL_LO=32768
free_port() {
	local port hex
	for _ in $(seq 1 500); do
		port=$((10000 + RANDOM % (EPHEMERAL_LO - 10000)))
		[[ $USED_PORTS == *" $port "* ]] && continue
		printf -v hex ':%04X ' "$port"
		if grep -q "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			continue
		fi
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			USED_PORTS+="$port "
			PORT=$port
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}
