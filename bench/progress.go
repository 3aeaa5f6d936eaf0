package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress writes a status line every interval while a phase of a run goes
// on. On a terminal each line overwrites the previous one; otherwise each is
// a plain line.
type progress struct {
	w        io.Writer
	tty      bool
	interval time.Duration
}

// DetectTTY reports whether w is a terminal (a character device), so that
// progress lines can overwrite each other.
func DetectTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// start calls line every interval from a goroutine of its own and writes
// what it returns; line gets the time since its previous call. The
// returned function stops the goroutine, waits for it, and ends the line on
// a terminal. A nil progress, or one without a writer, writes nothing.
func (p *progress) start(line func(tick time.Duration) string) (stop func()) {
	if p == nil || p.w == nil || p.interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(p.interval)
		defer t.Stop()
		last := time.Now()
		wrote := false
		for {
			select {
			case <-done:
				if wrote && p.tty {
					io.WriteString(p.w, "\n")
				}
				return
			case now := <-t.C:
				s := line(now.Sub(last))
				last = now
				if p.tty {
					// Carriage return, the line, erase to the end of the line.
					fmt.Fprintf(p.w, "\r%s\x1b[K", strings.TrimSpace(s))
				} else {
					fmt.Fprintln(p.w, strings.TrimSpace(s))
				}
				wrote = true
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}
