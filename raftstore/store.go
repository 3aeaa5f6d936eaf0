package raftstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Network gives each group the raft.StreamLayer its transport runs on.
// raftmux.Mux implements it: all groups of a node share one TCP listener.
type Network interface {
	StreamLayer(group uint64) raft.StreamLayer
}

// Options configure a Store. NodeID, Dir and Network are required.
type Options struct {
	// NodeID is this node's raft.ServerID in every group it hosts.
	NodeID string
	// Dir holds the node's state: Pebble in Dir/pebble, each group's raft
	// snapshots in Dir/snapshots/<group>/snapshots.
	Dir string
	// Network provides each group's transport stream layer.
	Network Network
	// Logger receives the logs of the store, of raft and of Pebble. Nil
	// discards them.
	Logger hclog.Logger

	// FS is the file system Pebble runs on (and restore sstables are
	// written to); nil is the OS file system. Tests inject faults here
	// (pebble vfs/errorfs). Raft snapshot files always live on the OS file
	// system.
	FS vfs.FS
	// Pebble, if set, is called with the Pebble options after the
	// defaults (see DefaultPebbleOptions) are filled in, to tune them.
	Pebble func(*pebble.Options)
	// Raft, if set, is called with each group's raft.Config after the
	// defaults (see DefaultRaftConfig) are filled in, to tune timeouts,
	// snapshot thresholds and the like. It must not change LocalID,
	// Logger, BatchApplyCh or NoSnapshotRestoreOnStart.
	Raft func(*raft.Config)

	// Fatal is called when Pebble hits an error it cannot continue after,
	// such as a failed WAL write or sync: the DB's durable state is then
	// unknown, and the only safe way on is a restart that recovers from
	// disk (fail-stop, as Pebble's and etcd's own defaults do). Fatal must
	// not return; if it does, the failing call panics. Nil logs the message
	// and exits the process with status 1.
	Fatal func(msg string)

	// SnapshotRetain is how many raft snapshots each group keeps on disk.
	// Default 1: each is a full copy of the group's state (compressed)
	// beside the same state in Pebble, and only the newest is ever sent
	// or restored.
	SnapshotRetain int
	// TransportMaxPool is how many outbound connections each group's
	// transport keeps per peer. Default 3.
	TransportMaxPool int
	// TransportTimeout is the I/O deadline of the group transports (raft
	// scales it up for snapshot installs). Default 10s.
	TransportTimeout time.Duration
}

// DefaultRaftConfig returns the raft.Config every group starts from before
// Options.Raft: raft's defaults, plus BatchApplyCh (commands proposed
// concurrently share one log append and one FSM batch), MaxAppendEntries
// 256 (bigger replication and apply batches), NoSnapshotRestoreOnStart
// (the FSM is persistent; see the package documentation), and a shorter
// log: SnapshotThreshold 2048 and TrailingLogs 1024 entries instead of
// raft's 8192 and 10240.
//
// The log is the other copy of every write on disk, and one entry carries
// up to 256 creates (the node's create batches), so raft's defaults kept
// the last ~10,000 entries, i.e. up to 2.5 million creates, after every
// snapshot: at 1,000,000 links that was 45 bytes per link per replica, all
// of them never read again (docs/BENCHMARKS.md). 1024 trailing entries still
// let a follower that fell up to ~1024 entries behind (seconds of peak
// load, minutes of light load) catch up from the log; one further behind is
// sent the snapshot.
func DefaultRaftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.BatchApplyCh = true
	c.MaxAppendEntries = 256
	c.NoSnapshotRestoreOnStart = true
	c.SnapshotThreshold = 2048
	c.TrailingLogs = 1024
	return c
}

// DefaultPebbleOptions returns the Pebble options of a Store before
// Options.Pebble: the newest on-disk format (snapshot restore needs
// IngestAndExcise), a 64 MiB block cache, 8 MiB memtables, a 10-bit bloom
// filter on every level (point reads: raft log entries, link lookups), up
// to 2 concurrent compactions, and Pebble's "balanced" compression (a fast
// codec on the upper levels, zstd on the two lowest, where nearly all the
// data of a node lives). Everything else is Pebble's default.
//
// Memtables are 8 MiB (Pebble's default is 4, this package used 32):
// Pebble keeps up to MemTableStopWritesThreshold+1 (3) used WAL files for
// recycling beside the live one, so the WAL's share of the disk is about
// four memtables, a fixed 128 MiB per node with 32 MiB (95 bytes per link
// per replica at 1,000,000 links; docs/BENCHMARKS.md); and a smaller
// skiplist is shallower for the point reads of every create.
//
// LBaseMaxBytes is 8 MiB, one memtable (Pebble's default is 64 MiB). A
// node holds tens to a few hundred MB, and with a 64 MiB base Pebble's
// dynamic level sizing makes the bottom level (or the one above it) the
// base: L0 then compacts straight into the level that holds nearly all the
// data, zstd and all, and since every write of a node (click records,
// creates, raft log entries) lands all over the key space, each of those
// compactions rewrites most of it. With an 8 MiB base the levels above
// the bottom go down to a few MB, L0 compacts into a small level where the
// overwritten click records are folded, and the bottom level is rewritten
// only when the level above it fills: the click write mix compacts
// 0.37-0.45 MB per flush instead of 0.66-1.24 MB, for 25-45 % less CPU;
// creates are unchanged within noise; disk per link at 1,000,000 links
// went down (222-231 B against 243-261 B with 64 MiB on the same code).
// BenchmarkPebbleWriteMix and docs/BENCHMARKS.md ("Pebble: the base level
// size") have the numbers, and the options tried and not taken.
//
// L0 is compacted at 8 sublevels (Pebble's default is 4) and writes stop
// at 24 (12): each L0 -> base compaction then takes twice the flushes for
// one rewrite of the base level. With the 8 MiB base that cost the nodes
// 4-14 % less CPU per create, at 1,900 creates/s and at 256 in flight, and
// disk per link at 1,000,000 links did not move (216-217 B); a cold read
// checks up to 8 L0 files' bloom filters instead of 4, within the noise of
// the cold redirect's CPU (docs/BENCHMARKS.md, "Nodes at moderate load",
// "Cut 2").
func DefaultPebbleOptions() *pebble.Options {
	o := &pebble.Options{
		FormatMajorVersion:    pebble.FormatNewest,
		MemTableSize:          8 << 20,
		LBaseMaxBytes:         8 << 20,
		L0CompactionThreshold: 8,
		L0StopWritesThreshold: 24,
		CompactionConcurrencyRange: func() (int, int) {
			return 1, 2
		},
	}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	o.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionBalanced })
	return o
}

// logCacheSize is how many recent log entries each group keeps in memory
// (raft.LogCache) for replication and apply.
const logCacheSize = 512

// blockCacheSize is the size of the block cache a Store creates.
const blockCacheSize = 64 << 20

// Store is a node's replicas of many Raft groups, all in one Pebble DB.
type Store struct {
	opts   Options
	logger hclog.Logger
	db     *pebble.DB
	pebOpt *pebble.Options
	fs     vfs.FS

	// dbMu guards reads of the DB from outside raft (Group.Read) against
	// Close: they hold it shared; Close takes it to close Pebble.
	dbMu     sync.RWMutex
	dbClosed bool

	logCompactor *logCompactor

	mu       sync.Mutex
	groups   map[uint64]*Group
	opening  map[uint64]bool
	openWG   sync.WaitGroup // OpenGroup calls in progress
	closed   bool
	closeErr error
	done     chan struct{} // closed when Close has finished
}

// Open opens (or creates) the node's Pebble DB in opts.Dir.
func Open(opts Options) (*Store, error) {
	if opts.NodeID == "" {
		return nil, errors.New("raftstore: Options.NodeID is required")
	}
	if opts.Dir == "" {
		return nil, errors.New("raftstore: Options.Dir is required")
	}
	if opts.Network == nil {
		return nil, errors.New("raftstore: Options.Network is required")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.SnapshotRetain <= 0 {
		opts.SnapshotRetain = 1
	}
	if opts.TransportMaxPool <= 0 {
		opts.TransportMaxPool = 3
	}
	if opts.TransportTimeout <= 0 {
		opts.TransportTimeout = 10 * time.Second
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	diskLog := opts.Logger.Named("disk")
	fs = reportWriteErrors(fs, func(op, path string, err error, unlogged int) {
		diskLog.Error("disk write failed (Pebble stops the node after a failed WAL write)", "op", op, "path", path, "err", err, "failures_not_logged", unlogged)
	})
	po := DefaultPebbleOptions()
	po.FS = fs
	po.Logger = pebbleLogger{l: opts.Logger.Named("pebble"), fatal: opts.Fatal}
	cache := pebble.NewCache(blockCacheSize)
	defer cache.Unref() // the DB holds its own reference
	po.Cache = cache
	if opts.Pebble != nil {
		opts.Pebble(po)
	}
	po.EnsureDefaults()
	if po.FormatMajorVersion < pebble.FormatVirtualSSTables {
		return nil, fmt.Errorf("raftstore: Pebble format %d is too old: snapshot restore needs %d", po.FormatMajorVersion, pebble.FormatVirtualSSTables)
	}
	dir := fs.PathJoin(opts.Dir, "pebble")
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftstore: create %s: %w", dir, err)
	}
	if err := syncParents(fs, dir); err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("raftstore: open pebble in %s: %w", dir, err)
	}
	return &Store{
		opts:         opts,
		logger:       opts.Logger,
		db:           db,
		pebOpt:       po,
		fs:           fs,
		logCompactor: newLogCompactor(db, opts.Logger.Named("logcompact"), logCompactInterval, logCompactMinBytes),
		groups:       make(map[uint64]*Group),
		opening:      make(map[uint64]bool),
		done:         make(chan struct{}),
	}, nil
}

// DB returns the node's Pebble DB, for inspection (tests, admin tools).
// Writes to a group's range outside raft break the group.
func (s *Store) DB() *pebble.DB { return s.db }

// GroupConfig describes a group to open.
type GroupConfig struct {
	// ID is the group (shard) ID, > 0.
	ID uint64
	// Peers is the group's initial membership. It is used only to bootstrap
	// a group that has no raft state on this node yet; every replica must
	// be given the same list.
	Peers []raft.Server
	// Machine applies the group's commands.
	Machine StateMachine
	// Join opens a group that has no raft state on this node without
	// bootstrapping it: raft starts with an empty configuration, does not
	// campaign, and waits for the group's leader to add it (as a non-voter
	// first). Peers is then not used. A node that lost its data joins this
	// way, so that it never votes with a forgotten log (see the package
	// documentation, "Rejoining"). Ignored when the group has state.
	Join bool
}

// OpenGroup starts this node's replica of a group. A group with existing
// state (a restart) resumes from it; a new one is bootstrapped with Peers,
// or, with Join, started empty to be added by the group's leader.
func (s *Store) OpenGroup(cfg GroupConfig) (*Group, error) {
	if cfg.ID == 0 {
		return nil, errors.New("raftstore: group ID 0 is reserved")
	}
	if cfg.Machine == nil {
		return nil, fmt.Errorf("raftstore: group %d: GroupConfig.Machine is required", cfg.ID)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if s.groups[cfg.ID] != nil || s.opening[cfg.ID] {
		s.mu.Unlock()
		return nil, fmt.Errorf("raftstore: group %d is already open", cfg.ID)
	}
	s.opening[cfg.ID] = true
	s.openWG.Add(1)
	s.mu.Unlock()
	defer s.openWG.Done()

	g, err := s.openGroup(cfg)

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.opening, cfg.ID)
	if err != nil {
		return nil, err
	}
	if s.closed {
		// Close ran while we were opening: it did not see this group.
		_ = g.shutdown()
		return nil, ErrClosed
	}
	s.groups[cfg.ID] = g
	return g, nil
}

func (s *Store) openGroup(cfg GroupConfig) (*Group, error) {
	id := cfg.ID
	logger := s.logger.With("group", id)
	logs := NewLogStore(s.db, id)
	logs.truncated = s.logCompactor.truncated

	snapBase := filepath.Join(s.opts.Dir, "snapshots", fmt.Sprint(id))
	snaps, err := raft.NewFileSnapshotStoreWithLogger(snapBase, s.opts.SnapshotRetain, logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("raftstore: group %d: snapshot store: %w", id, err)
	}
	env := restoreEnv{
		fs:         s.fs,
		dir:        s.fs.PathJoin(s.opts.Dir, "restore"),
		writerOpts: s.pebOpt.MakeWriterOptions(0, s.db.TableFormat()),
	}
	f, err := newFSM(s.db, id, cfg.Machine, logger.Named("fsm"), env)
	if err != nil {
		return nil, err
	}
	if err := recoverSnapshot(f, snaps, logger); err != nil {
		return nil, fmt.Errorf("raftstore: group %d: %w", id, err)
	}

	conf := DefaultRaftConfig()
	if s.opts.Raft != nil {
		s.opts.Raft(conf)
	}
	conf.LocalID = raft.ServerID(s.opts.NodeID)
	conf.Logger = logger.Named("raft")
	conf.BatchApplyCh = true
	conf.NoSnapshotRestoreOnStart = true
	if err := raft.ValidateConfig(conf); err != nil {
		return nil, fmt.Errorf("raftstore: group %d: raft config: %w", id, err)
	}

	stream := s.opts.Network.StreamLayer(id)
	if stream == nil {
		return nil, fmt.Errorf("raftstore: group %d: the network has no stream layer for it", id)
	}
	// MaxRPCsInFlight 1 turns raft's pipelined replication off. In
	// hashicorp/raft v1.8.0 the pipeline can deadlock after a follower
	// answers Success=false (decodeResponses blocks on doneCh after
	// pipelineDecode returned, while pipelineReplicate blocks on the full
	// inprogressCh): the leader stops replicating to that follower for good
	// and its shutdown hangs (hashicorp/raft#612; found by the robustness
	// scenario TestLeaderStopLoop, docs/ROBUSTNESS.md). With batching,
	// synchronous AppendEntries cost little (see the field's documentation).
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:          stream,
		MaxPool:         s.opts.TransportMaxPool,
		MaxRPCsInFlight: 1,
		Timeout:         s.opts.TransportTimeout,
		Logger:          logger.Named("transport"),
	})

	existing, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		_ = trans.Close()
		return nil, fmt.Errorf("raftstore: group %d: check existing state: %w", id, err)
	}
	if !existing && !cfg.Join {
		if len(cfg.Peers) == 0 {
			_ = trans.Close()
			return nil, fmt.Errorf("raftstore: group %d: no raft state and no peers to bootstrap with", id)
		}
		if err := raft.BootstrapCluster(conf, logs, logs, snaps, trans, raft.Configuration{Servers: cfg.Peers}); err != nil {
			_ = trans.Close()
			return nil, fmt.Errorf("raftstore: group %d: bootstrap: %w", id, err)
		}
	}
	// Followers are fed (and the FSM applies) the entries just appended:
	// keep the most recent ones in memory rather than decode them again.
	cached, err := raft.NewLogCache(logCacheSize, logs)
	if err != nil {
		_ = trans.Close()
		return nil, fmt.Errorf("raftstore: group %d: log cache: %w", id, err)
	}
	r, err := raft.NewRaft(conf, f, cached, logs, snaps, trans)
	if err != nil {
		_ = trans.Close()
		return nil, fmt.Errorf("raftstore: group %d: start raft: %w", id, err)
	}
	return &Group{id: id, store: s, raft: r, fsm: f, logs: logs, logger: logger, stop: make(chan struct{})}, nil
}

// recoverSnapshot restores the newest raft snapshot into the FSM if the
// FSM's durable state is older than it (by applied index). That happens only after a crash
// between raft persisting an installed snapshot and the FSM ingesting it:
// raft, run with NoSnapshotRestoreOnStart, would otherwise resume from the
// snapshot's index over the older state.
func recoverSnapshot(f *fsm, snaps raft.SnapshotStore, logger hclog.Logger) error {
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil
	}
	// raft's snapshot index counts entries the FSM never sees (no-ops,
	// barriers), so compare the applied index in the stream's header.
	meta := list[0]
	_, rc, err := snaps.Open(meta.ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", meta.ID, err)
	}
	sr, err := newSnapshotReader(rc, f.group)
	if err != nil {
		_ = rc.Close()
		return fmt.Errorf("snapshot %s: %w", meta.ID, err)
	}
	sr.close()
	if sr.applied <= f.applied.Load() {
		return rc.Close()
	}
	_ = rc.Close()
	logger.Warn("state is older than the newest snapshot; restoring it",
		"applied-index", f.applied.Load(), "snapshot", meta.ID, "snapshot-applied-index", sr.applied)
	if _, rc, err = snaps.Open(meta.ID); err != nil {
		return fmt.Errorf("open snapshot %s: %w", meta.ID, err)
	}
	if err := f.Restore(rc); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", meta.ID, err)
	}
	return nil
}

// Group returns the open group with the given ID, or ErrUnknownGroup.
func (s *Store) Group(id uint64) (*Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	g := s.groups[id]
	if g == nil {
		return nil, fmt.Errorf("raftstore: group %d: %w", id, ErrUnknownGroup)
	}
	return g, nil
}

// Groups returns the IDs of the open groups, in no particular order.
func (s *Store) Groups() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]uint64, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	return ids
}

// CloseGroup shuts down this node's replica of a group and waits for it. Its
// state stays in the DB: OpenGroup resumes it.
func (s *Store) CloseGroup(id uint64) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	g := s.groups[id]
	delete(s.groups, id)
	s.mu.Unlock()
	if g == nil {
		return fmt.Errorf("raftstore: group %d: %w", id, ErrUnknownGroup)
	}
	return g.shutdown()
}

// Close shuts down every group (raft, its goroutines and its transport)
// and the compactor of truncated logs, then closes Pebble. It is
// idempotent: later calls wait for the first and return its result.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return s.closeErr
	}
	s.closed = true
	groups := s.groups
	s.groups = nil
	s.mu.Unlock()

	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.shutdown(); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	// OpenGroup calls that were in progress shut their group down
	// themselves once they see closed; wait for them before Pebble goes.
	s.openWG.Wait()
	s.logCompactor.close()
	s.dbMu.Lock()
	s.dbClosed = true
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("raftstore: close pebble: %w", err))
	}
	s.dbMu.Unlock()
	s.closeErr = errors.Join(errs...)
	close(s.done)
	return s.closeErr
}

// syncParents fsyncs every ancestor directory of dir, so that dir itself
// (possibly just created) survives a crash. Pebble syncs what it creates
// inside dir, not dir's own entry in its parent.
func syncParents(fs vfs.FS, dir string) error {
	for {
		parent := fs.PathDir(dir)
		if parent == dir || parent == "" {
			return nil
		}
		d, err := fs.OpenDir(parent)
		if err != nil {
			return fmt.Errorf("open directory %s: %w", parent, err)
		}
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return fmt.Errorf("sync directory %s: %w", parent, err)
		}
		dir = parent
	}
}

// pebbleLogger routes Pebble's log lines to hclog.
type pebbleLogger struct {
	l     hclog.Logger
	fatal func(msg string)
}

func (p pebbleLogger) Infof(format string, args ...interface{}) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...interface{}) {
	p.l.Error(fmt.Sprintf(format, args...))
}

// Fatalf stops: see Options.Fatal.
func (p pebbleLogger) Fatalf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("fatal storage error", "error", msg)
	if p.fatal == nil {
		os.Exit(1)
	}
	p.fatal(msg)
	panic("raftstore: fatal storage error: " + msg)
}
