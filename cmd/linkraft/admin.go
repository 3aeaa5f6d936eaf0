package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/shardrpc"
)

func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "new-key" {
		return runNewKey(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "du" {
		return runAdminDU(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, "Usage: linkraft admin status --config FILE\n"+
			"       linkraft admin new-key --id ID [--admin]\n"+
			"       linkraft admin du -data-dir DIR [-links N]\n\n"+
			"  status   every shard's replicas: state, leader, term, applied and last index\n"+
			"  new-key  a fresh random API key and its line for cluster.yaml's api_keys\n"+
			"  du       a stopped node's disk usage: raft log, FSM, snapshots, WAL, per group")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	fs := newFlagSet("admin status --config FILE",
		"Asks every node for the state of each of its shard replicas and prints a table.", stderr)
	cfgPath := fs.String("config", "cluster.yaml", "path of the cluster file")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for each node")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	client := shardrpc.NewClient(cfg, shardrpc.ClientOptions{})
	defer client.Close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tNODE\tSTATE\tLEADER\tTERM\tAPPLIED\tLAST")
	for _, sh := range cfg.Shards {
		for _, nodeID := range sh.Replicas {
			cctx, cancel := context.WithTimeout(ctx, *timeout)
			st, err := client.NodeStatus(cctx, nodeID, sh.ID)
			cancel()
			if err != nil {
				fmt.Fprintf(tw, "%d\t%s\tunreachable\t-\t-\t-\t-\t(%v)\n", sh.ID, nodeID, err)
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\n", sh.ID, nodeID, st.State, st.LeaderID, st.Term, st.AppliedIndex, st.LastIndex)
		}
	}
	return tw.Flush()
}
