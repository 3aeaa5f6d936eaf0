package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/node"
)

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("node --config FILE --id ID",
		"Runs one storage node: hosts its replicas of the shards in the cluster file\n"+
			"(bootstrapping each shard's Raft group on first start only) and serves the\n"+
			"internal RPC the routers call. SIGINT or SIGTERM stops it cleanly.", stderr)
	cfgPath := fs.String("config", "cluster.yaml", "path of the cluster file")
	id := fs.String("id", "", "ID of this node in the cluster file (required)")
	verbose := fs.Bool("v", false, "log debug messages (including Raft's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id == "" {
		fmt.Fprintln(stderr, "--id is required")
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := newLogger(stderr, level).With("node", *id)
	n, err := node.New(cfg, *id, node.Options{Logger: logger})
	if err != nil {
		return err
	}
	logger.Info("node started")
	<-ctx.Done()
	logger.Info("stopping")
	if err := n.Close(); err != nil {
		return fmt.Errorf("stop node %s: %w", *id, err)
	}
	logger.Info("stopped")
	return nil
}
