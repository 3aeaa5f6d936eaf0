package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/router"
	"github.com/linkraft/linkraft/shardrpc"
)

func runRouter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("router --config FILE --id ID",
		"Runs one router: the public HTTP API (shorten, redirect, link records,\n"+
			"health). SIGINT or SIGTERM stops it after in-flight requests finish.", stderr)
	cfgPath := fs.String("config", "cluster.yaml", "path of the cluster file")
	id := fs.String("id", "", "ID of this router in the cluster file (required)")
	verbose := fs.Bool("v", false, "log debug messages")
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
	logger := newLogger(stderr, level).With("router", *id)
	client := shardrpc.NewClient(cfg, shardrpc.ClientOptions{})
	defer client.Close()
	r, err := router.New(cfg, *id, client, router.Options{Logger: logger})
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- r.ListenAndServe() }()
	logger.Info("router started")
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, router.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}
