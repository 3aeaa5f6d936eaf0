// Command linkraft is the one binary of a linkraft cluster. Its subcommands
// run a storage node, a router, the whole cluster of a cluster.yaml on this
// machine, the load harness, and administrative queries.
//
//	linkraft node   --config cluster.yaml --id n1
//	linkraft router --config cluster.yaml --id r1
//	linkraft up     --config cluster.yaml
//	linkraft bench  --target http://127.0.0.1:8080 --workload mixed
//	linkraft admin  status --config cluster.yaml
//	linkraft admin  new-key --id alice [--admin]
//
// Run `linkraft <subcommand> --help` for each subcommand's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkraft/linkraft/config"
)

// command is one subcommand: its name, one line of help, and its body.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"node", "run one storage node of the cluster", runNode},
		{"router", "run one router (the public HTTP API)", runRouter},
		{"up", "run every node and router of the cluster file on this machine", runUp},
		{"bench", "load-test a router: shorten, redirect, mixed and cold workloads", runBench},
		{"admin", "administrative queries (status) and API keys (new-key)", runAdmin},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit code: 0 on
// success, 2 for a usage error, 1 for any other failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "linkraft %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "linkraft: unknown subcommand %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage marks an error already reported to the user with the flag usage.
var errUsage = errors.New("usage error")

func usage(w io.Writer) {
	fmt.Fprintln(w, "linkraft: a sharded, Raft-replicated URL shortener")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: linkraft <subcommand> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'linkraft <subcommand> --help' for the flags of a subcommand.")
}

// newFlagSet returns a flag set that writes its usage to stderr and whose
// parse errors come back as errUsage (flag.ErrHelp for --help).
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("linkraft "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: linkraft %s\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and maps parse errors to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %q\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return nil
}

// newLogger returns the process logger: text lines on stderr.
func newLogger(stderr io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

// process is what `node` and `router` share: the cluster file, the process
// ID in it, and a logger tagged with that ID.
type process struct {
	cfg    *config.Config
	id     string
	logger *slog.Logger
}

// parseProcessFlags defines and parses --config, --id and -v on fs and loads
// the cluster file. kind ("node" or "router") tags the log lines.
func parseProcessFlags(fs *flag.FlagSet, args []string, kind string) (process, error) {
	cfgPath := fs.String("config", "cluster.yaml", "path of the cluster file")
	id := fs.String("id", "", "ID of this "+kind+" in the cluster file (required)")
	verbose := fs.Bool("v", false, "log debug messages")
	if err := parseFlags(fs, args); err != nil {
		return process{}, err
	}
	if *id == "" {
		fmt.Fprintln(fs.Output(), "--id is required")
		fs.Usage()
		return process{}, errUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return process{}, err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	return process{cfg: cfg, id: *id, logger: newLogger(fs.Output(), level).With(kind, *id)}, nil
}
