// Package supervisor runs a set of child processes, prefixes their output with
// the process name, restarts a child that exits unexpectedly (with a capped
// backoff), and stops them all, in a stated order, when asked.
//
// It is what `linkraft up` uses to run every process of a cluster.yaml on one
// machine: storage nodes first, routers after them, and on stop the routers
// first (so no request reaches a node that is going away), then the nodes.
package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Spec describes one child process.
type Spec struct {
	// Name prefixes every line the child writes, e.g. "n1".
	Name string
	// Path and Args are the program and its arguments (Args excludes the
	// program name).
	Path string
	Args []string
	// Env is added to the supervisor's own environment.
	Env []string
}

// Options tune a Supervisor. The zero value is usable.
type Options struct {
	// Output receives every prefixed line of every child (default os.Stdout).
	Output io.Writer
	// StopTimeout is how long a child has to exit after SIGTERM before it is
	// killed (default 10s).
	StopTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before a crashed child is
	// restarted (defaults 200ms and 5s). The delay doubles on each crash
	// that follows a run shorter than MaxBackoff*2 and resets otherwise.
	MinBackoff, MaxBackoff time.Duration
}

// Supervisor owns the child processes it started. Create one with New, call
// Run, and cancel Run's context to stop every child.
type Supervisor struct {
	opts  Options
	specs []Spec

	outMu sync.Mutex // serialises whole lines on opts.Output
}

// New returns a supervisor for specs, started in order by Run and stopped in
// reverse order.
func New(specs []Spec, opts Options) *Supervisor {
	if opts.Output == nil {
		opts.Output = os.Stdout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = 5 * time.Second
	}
	return &Supervisor{opts: opts, specs: specs}
}

// Run starts every child and keeps it running until ctx is cancelled; then it
// stops the children in reverse start order, each with SIGTERM and, after
// StopTimeout, SIGKILL. Run returns once every child has exited. It returns
// an error only when a child cannot be started at all the first time.
func (s *Supervisor) Run(ctx context.Context) error {
	children := make([]*child, len(s.specs))
	for i, spec := range s.specs {
		c := &child{spec: spec, sup: s, stopCh: make(chan struct{}), done: make(chan struct{})}
		if err := c.start(); err != nil {
			for j := i - 1; j >= 0; j-- {
				children[j].stop()
			}
			return fmt.Errorf("supervisor: start %s: %w", spec.Name, err)
		}
		children[i] = c
		go c.supervise()
	}
	<-ctx.Done()
	// Reverse order: routers (started last) stop before the nodes they call.
	for i := len(children) - 1; i >= 0; i-- {
		children[i].stop()
	}
	return nil
}

// child is one supervised process. Its supervise goroutine is the only one
// that starts or waits for the process; stop asks it to end and waits.
type child struct {
	spec   Spec
	sup    *Supervisor
	stopCh chan struct{}
	done   chan struct{}

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been waited for
	pipes  sync.WaitGroup
}

func (c *child) start() error {
	cmd := exec.Command(c.spec.Path, c.spec.Args...)
	cmd.Env = append(os.Environ(), c.spec.Env...)
	// Own process group: a Ctrl-C in the terminal reaches the supervisor
	// only, which then stops the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("stdout pipe: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("stderr pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec %s: %w", c.spec.Path, err)
	}
	c.pipes.Add(2)
	go c.copyLines(stdout)
	go c.copyLines(stderr)
	c.mu.Lock()
	c.cmd, c.exited = cmd, make(chan struct{})
	c.mu.Unlock()
	return nil
}

func (c *child) copyLines(r io.Reader) {
	defer c.pipes.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		c.sup.printf("[%s] %s\n", c.spec.Name, sc.Bytes())
	}
}

func (s *Supervisor) printf(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.opts.Output, format, args...)
}

// supervise owns the child's processes: it waits for each, restarts it
// after an unexpected exit, and terminates it when stop is called.
func (c *child) supervise() {
	defer close(c.done)
	backoff := c.sup.opts.MinBackoff
	for {
		c.mu.Lock()
		cmd, exited := c.cmd, c.exited
		c.mu.Unlock()
		started := time.Now()
		var waitErr error
		go func() {
			c.pipes.Wait() // the pipes close when the process exits
			waitErr = cmd.Wait()
			close(exited)
		}()
		select {
		case <-c.stopCh:
			c.terminate(cmd, exited)
			return
		case <-exited:
		}
		c.sup.printf("[%s] exited unexpectedly (%s); restarting in %s\n", c.spec.Name, exitReason(waitErr), backoff)
		if time.Since(started) > 2*c.sup.opts.MaxBackoff {
			backoff = c.sup.opts.MinBackoff
		}
		for {
			if !c.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, c.sup.opts.MaxBackoff)
			err := c.start()
			if err == nil {
				break
			}
			c.sup.printf("[%s] restart failed: %v\n", c.spec.Name, err)
		}
	}
}

// sleep waits d and reports whether the child should go on (false: stop was
// called meanwhile).
func (c *child) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-c.stopCh:
		return false
	case <-timer.C:
		return true
	}
}

// terminate sends SIGTERM, then SIGKILL after StopTimeout, and waits for the
// process to be reaped.
func (c *child) terminate(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(c.sup.opts.StopTimeout)
	defer timer.Stop()
	select {
	case <-exited:
		return
	case <-timer.C:
	}
	c.sup.printf("[%s] did not stop within %s; killing\n", c.spec.Name, c.sup.opts.StopTimeout)
	_ = cmd.Process.Kill()
	<-exited
}

// stop ends the child and returns once its process has exited and its
// supervise goroutine has finished.
func (c *child) stop() {
	close(c.stopCh)
	<-c.done
}

func exitReason(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
