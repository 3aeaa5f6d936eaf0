package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/supervisor"
)

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up --config FILE",
		"Starts every storage node and router of the cluster file on this machine as\n"+
			"supervised child processes (nodes first), prefixes their output with the\n"+
			"process ID, restarts a process that crashes, and on Ctrl-C stops all of\n"+
			"them (routers first).", stderr)
	cfgPath := fs.String("config", "cluster.yaml", "path of the cluster file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(*cfgPath)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", *cfgPath, err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	var specs []supervisor.Spec
	for _, n := range cfg.Nodes {
		specs = append(specs, supervisor.Spec{Name: n.ID, Path: self, Args: []string{"node", "--config", abs, "--id", n.ID}})
	}
	for _, r := range cfg.Routers {
		specs = append(specs, supervisor.Spec{Name: r.ID, Path: self, Args: []string{"router", "--config", abs, "--id", r.ID}})
	}
	fmt.Fprintf(stdout, "linkraft up: %d nodes, %d shards, %d routers from %s; Ctrl-C stops all\n",
		len(cfg.Nodes), len(cfg.Shards), len(cfg.Routers), abs)
	for _, r := range cfg.Routers {
		fmt.Fprintf(stdout, "linkraft up: router %s serves %s\n", r.ID, r.BaseURL)
	}
	if err := supervisor.New(specs, supervisor.Options{Output: stdout}).Run(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "linkraft up: every process stopped")
	return nil
}
