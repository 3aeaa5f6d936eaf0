// Package clicks counts redirects on a router and flushes the counts to the
// shards that own the codes.
//
// # Counting
//
// The redirect path calls [Counter.Record] once per redirect with a
// [ClickInfo]: the UTC [Day], the referrer host, the [Agent] class of the
// user agent (browser, OS, device, bot) and a keyed 64-bit visitor hash of
// (client IP, user agent). The IP itself is never stored or sent: only
// [VisitorHasher.Sum] of it (SipHash-2-4 keyed with a per-cluster secret,
// over the IP and the user agent's xxhash64), goes into a HyperLogLog
// sketch of unique visitors.
//
// The counter is striped: a code hashes to one of [NumStripes] stripes, each
// a mutex and two maps (the one being filled and the one being flushed), so
// concurrent redirects of different codes rarely contend. For a code already
// seen, with a referrer, agent class and visitor already seen, Record does
// not allocate.
//
// Per (code, day) the counter keeps human clicks, bot clicks, a
// HyperLogLog sketch of human visitors (github.com/axiomhq/hyperloglog,
// precision [SketchPrecision]) and tallies of referrer hosts, browsers,
// OSes and devices of human clicks. A flush caps every tally at
// [MaxTallyKeys] keys: the largest counts are kept and the rest are summed
// under [OtherKey].
//
// # Bots
//
// A click is a bot click when the user agent parser
// (github.com/medama-io/go-useragent) classes it as a bot, or when the user
// agent contains one of [BotMarkers] (case-insensitive): crawlers
// (Googlebot, bingbot, ...), link previewers (Slackbot, Twitterbot,
// facebookexternalhit, WhatsApp, ...), headless browsers and HTTP tools and
// libraries (curl, wget, python-requests, Go-http-client, ...). Tools are
// counted as bots on purpose: a person running curl against a short link is
// not a visitor of the target, and most such traffic is scripted. An empty
// user agent is a bot click too. Bot clicks are counted separately and never
// in clicks, uniques or the tallies.
//
// Parsing is cached per user agent string in a bounded, lock-free cache
// ([Classifier]); user agents repeat a lot, so the redirect path usually
// pays one hash of the user agent and one comparison.
//
// # Flushing
//
// A [Flusher] runs [Flusher.Flush] every interval (cluster.yaml
// click_flush_interval). A flush swaps each stripe's maps, groups the
// counts by shard (the caller's shardOf, ring.ShardOfCodeBytes) into one
// [Batch] per shard and hands it to the [Sink]. A batch carries (router ID,
// sequence): the sequence is per router and shard, strictly increasing. A
// batch that fails stays pending and is sent again, with the same sequence
// and the same content, before any later batch of that shard; new clicks go
// into later batches. The shard applies a (router, sequence) at most once,
// so a retried flush is never counted twice. [Flusher.Close] flushes until
// everything is acknowledged or its context ends, so a graceful stop loses
// nothing; a hard kill loses the clicks counted since the last flush plus
// any batch not yet acknowledged.
//
// The flush loop paces its sends: rather than every shard getting its
// batches at the tick, each shard's batches are spread evenly over the
// first half of the interval ([FlusherConfig.PaceWindow]), the shards'
// offset from each other, so the replicas apply one batch at a time and
// the CPU they spend on it does not land on the machine at one instant.
// The drain, the batches, their sequences, the order per shard and the
// retries are the same as without pacing. [Flusher.Flush] and
// [Flusher.Close] do not pace, and make a paced flush under way send the
// rest of its batches at once.
//
// The sequence of a new Flusher starts at the wall clock in microseconds,
// so a restarted router continues above every sequence of its previous run
// (a flush per shard at most every 10 ms uses far fewer than a million
// sequences per second). Two running routers must not share an ID.
//
// # Encoding
//
// [AppendBatch] and [DecodeBatch] are a compact, versioned binary encoding
// of a Batch (the body of the click RPC and of the shard's Raft command):
//
//	version 0x01 | len(router) uvarint | router | seq uvarint | count uvarint | delta*
//	delta: len(code) uvarint | code | day uvarint | clicks uvarint | bots uvarint |
//	       len(sketch) uvarint | sketch | 4 x tally
//	tally: count uvarint | { len(key) uvarint | key | n uvarint }*
//
// The tallies are, in order, referrers, browsers, OSes and devices.
package clicks
