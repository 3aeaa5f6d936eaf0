#!/usr/bin/env python3
"""scripts/phase.py: where inside each click flush interval the CPU and the
latency of a running cluster go (scripts/bench-open.sh runs it).

  phase.py sample OUT SECONDS NAME=PID...   every ~10 ms, the monotonic
      time and the user+system clock ticks of each PID (/proc/PID/stat),
      one line each, to OUT.
  phase.py probe OUT SECONDS HOST:PORT CODE   one GET /CODE every 2 ms on
      one keep-alive connection (a slot missed while waiting for an answer
      is skipped, so a stall shows as the latency of the requests sent
      into it, not as a backlog), one line "send_time latency_s" each.
  phase.py fold PERIOD SAMPLES [PROBE]   folds both over PERIOD seconds in
      20 bins: per bin, each process's mean CPU (cores) and the probe's
      p50/p99 latency and count. The bins are aligned so that bin 0 holds
      the nodes' peak.
"""
import os
import socket
import sys
import time


def sample(out, secs, pairs):
    names = [p.split("=")[0] for p in pairs]
    pids = [p.split("=")[1] for p in pairs]
    end = time.monotonic() + secs
    with open(out, "w") as f:
        f.write("t " + " ".join(names) + "\n")
        nxt = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= end:
                break
            ticks = []
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/stat") as s:
                        fl = s.read().rsplit(")", 1)[1].split()
                    ticks.append(str(int(fl[11]) + int(fl[12])))
                except OSError:
                    ticks.append("0")
            f.write(f"{now:.6f} " + " ".join(ticks) + "\n")
            nxt += 0.01
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)


def probe(out, secs, hp, code):
    host, port = hp.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = f"GET /{code} HTTP/1.1\r\nHost: {hp}\r\nUser-Agent: phase-probe/1 Mozilla/5.0\r\n\r\n".encode()
    start = time.monotonic()
    end = start + secs
    rows = []
    i = 0
    while True:
        due = start + i * 0.002
        if due >= end:
            break
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        else:
            i += int(-d / 0.002)
        sent = time.monotonic()
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("probe: connection closed")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        while len(body) < n:
            body += s.recv(4096)
        rows.append(f"{sent:.6f} {time.monotonic() - sent:.6f}")
        i += 1
    with open(out, "w") as f:
        f.write("\n".join(rows) + "\n")


def pct(v, q):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def fold(period, samples, probe_file=None):
    bins = 20
    hz = os.sysconf("SC_CLK_TCK")
    with open(samples) as f:
        names = f.readline().split()[1:]
        rows = [list(map(float, l.split())) for l in f if l.strip()]
    cpu = [[[] for _ in names] for _ in range(bins)]
    # CPU over 50 ms windows (5 samples), so that 10 ms ticks average out.
    for a, b in zip(rows, rows[5:]):
        dt = b[0] - a[0]
        mid = (a[0] + b[0]) / 2
        k = int((mid % period) / period * bins)
        for j in range(len(names)):
            cpu[k][j].append((b[j + 1] - a[j + 1]) / hz / dt)
    nodes = [j for j, n in enumerate(names) if n.startswith("n")]
    load = [sum(sum(cpu[k][j]) / max(1, len(cpu[k][j])) for j in nodes) for k in range(bins)]
    shift = load.index(max(load)) if nodes else 0
    lat = [[] for _ in range(bins)]
    if probe_file:
        with open(probe_file) as f:
            for l in f:
                t, d = map(float, l.split())
                lat[int((t % period) / period * bins)].append(d * 1000)
    print("| phase (ms) | " + " | ".join(f"{n} cores" for n in names) +
          (" | probe n | probe p50 ms | probe p99 ms |" if probe_file else " |"))
    print("|--:|" + "--:|" * (len(names) + (3 if probe_file else 0)))
    for i in range(bins):
        k = (i + shift) % bins
        cells = [f"{sum(c) / max(1, len(c)):.2f}" for c in cpu[k]]
        if probe_file:
            cells += [str(len(lat[k])), f"{pct(lat[k], .5):.2f}", f"{pct(lat[k], .99):.2f}"]
        print(f"| {i * period * 1000 / bins:.0f} | " + " | ".join(cells) + " |")
    if nodes:
        total = sum(load)
        peak2 = max(load[k] + load[(k + 1) % bins] for k in range(bins))
        print(f"\nNodes: {total / bins:.2f} cores on average; the busiest 100 ms of the interval "
              f"hold {100 * peak2 / total:.1f} % of their CPU (even: {200 / bins:.0f} %), "
              f"the busiest 50 ms {max(load) / (total / bins):.2f}x the mean.")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sample":
        sample(sys.argv[2], float(sys.argv[3]), sys.argv[4:])
    elif cmd == "probe":
        probe(sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "fold":
        fold(float(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        raise SystemExit(__doc__)
