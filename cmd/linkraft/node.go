package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/linkraft/linkraft/node"
)

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("node --config FILE --id ID",
		"Runs one storage node: hosts its replicas of the shards in the cluster file\n"+
			"(bootstrapping each shard's Raft group on first start only) and serves the\n"+
			"internal RPC the routers call. SIGINT or SIGTERM stops it cleanly.", stderr)
	proc, err := parseProcessFlags(fs, args, "node")
	if err != nil {
		return err
	}
	cfg, id, logger := proc.cfg, proc.id, proc.logger
	diskFS, stopFaults, err := nodeDiskFaults(logger) // nil, the OS's, unless built with faultinject
	if err != nil {
		return err
	}
	defer stopFaults()
	n, err := node.New(cfg, id, node.Options{Logger: logger, FS: diskFS})
	if err != nil {
		return err
	}
	self, _ := cfg.Node(id) // node.New checked it
	admin, err := startAdmin(self.AdminAddr, logger)
	if err != nil {
		return errors.Join(err, n.Close())
	}
	logger.Info("node started")
	<-ctx.Done()
	logger.Info("stopping")
	if err := errors.Join(admin.Close(), n.Close()); err != nil {
		return fmt.Errorf("stop node %s: %w", id, err)
	}
	logger.Info("stopped")
	return nil
}
