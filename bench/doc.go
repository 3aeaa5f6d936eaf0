// Package bench is linkraft's load harness. It drives the public HTTP API of
// any router (or any server that answers the same requests, such as an nginx
// baseline) and reports latency percentiles from HDR histograms, throughput
// and errors by kind, as a Markdown table and as a JSON result.
//
// # Workloads
//
//   - shorten: POST /api/v1/links, each with a unique URL.
//   - redirect: GET /{code} without following the redirect, codes drawn
//     Zipf-distributed (s = 1.1 by default) over N links (default 100,000);
//     a 301, 302, 307 or 308 with a Location header is a success.
//   - mixed: ten redirects to one shorten, in a fixed interleaving.
//   - cold: redirects drawn uniformly over N links (default 1,000,000). It
//     measures the path through the shards only if the target router runs
//     with its cache off (`cache_size: 0` in cluster.yaml): the harness cannot
//     turn a router's cache off.
//
// The links that redirect, mixed and cold read are made by the harness before
// the run (CodesCreate: concurrent POSTs, so the router's creates batch into
// few Raft entries), read from a file (CodesFile, one code a line, as written
// by Config.SaveCodes), or synthesized (CodesNone: random 7-character codes
// and no POST at all, for servers that redirect every path, like the nginx
// baseline, so that the baseline drives exactly the same request loop).
//
// # Load models
//
// Closed loop (Rate == 0): Concurrency workers each send a request, wait for
// the answer and send the next. Latency is measured from the actual send.
//
// Open loop (Rate > 0): requests have intended send times spaced 1/Rate
// apart. Concurrency workers take the next intended time from one shared
// sequence, wait for it, and send. A worker that takes a request whose
// intended time has already passed (it was busy with an earlier answer)
// measures the latency from the intended time, not from its actual send, so
// a stalled server shows up in the percentiles instead of silently slowing
// the generator down (coordinated omission). A worker that is early sleeps
// until the intended time and measures from its send: Go's timers fire up to
// about a millisecond late, and that lateness belongs to the harness, not to
// the target. The requests that are due and not yet answered are bounded by
// MaxInFlight: a request that would exceed the bound is not sent and is
// counted as an error of kind "inflight_limit".
//
// # Measurement
//
// Every run has a warmup (not recorded) and a fixed duration; it always stops
// by itself, and a cancelled context stops it early with the results so far.
// Each worker owns its histograms and counters, so the hot path takes no lock;
// the histograms are merged when the run ends. A progress line is written
// once a second while the run goes on.
//
// A run also measures CPU over exactly its recorded window: its own (the
// generator's, from getrusage) and that of the local processes named in
// Config.CPUOf (from /proc/PID/stat), each reported per successful request
// (Result.CPU). On a machine the harness shares with the target, that is
// the figure that compares two builds: throughput drifts with whatever else
// runs, the CPU a request costs far less.
package bench
