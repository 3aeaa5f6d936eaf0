package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/linkraft/linkraft/raftstore"
)

// runAdminDU prints a stopped node's disk usage by kind and group
// (raftstore.DiskUsage), and per link when -links gives the number of links
// the node holds.
func runAdminDU(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin du -data-dir DIR [-links N]",
		"Prints what a stopped node's data directory holds: each group's raft log and FSM (sstables),\n"+
			"raft snapshots, the WAL and the rest; with -links, bytes per link.", stderr)
	dir := fs.String("data-dir", "", "the node's data_dir (the node must be stopped)")
	links := fs.Int64("links", 0, "links the node holds a replica of (0: no per-link column)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "admin du: -data-dir is required")
		return errUsage
	}
	if *links < 0 {
		fmt.Fprintln(stderr, "admin du: -links must not be negative")
		return errUsage
	}
	u, err := raftstore.DiskUsage(*dir)
	if err != nil {
		return err
	}
	perLink := func(n int64) string {
		if *links == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(n)/float64(*links))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tbytes\tMiB\tB/link\t\n", *dir)
	row := func(name string, n int64) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t\n", name, n, float64(n)/(1<<20), perLink(n))
	}
	var logs, fsms int64
	for _, g := range u.Groups {
		row(fmt.Sprintf("group %d raft log (entries %d-%d)", g.ID, g.FirstIndex, g.LastIndex), g.Log)
		row(fmt.Sprintf("group %d FSM", g.ID), g.FSM)
		row(fmt.Sprintf("group %d snapshots", g.ID), g.Snapshots)
		logs += g.Log
		fsms += g.FSM
	}
	row("raft log sstables, all groups", logs)
	row("FSM sstables, all groups", fsms)
	row("Pebble WAL", u.WAL)
	row("Pebble other (MANIFEST, OPTIONS)", u.Pebble-u.SSTables-u.WAL)
	row("raft snapshots", u.Snapshots)
	row("total", u.Total)
	return tw.Flush()
}
