package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/seed82ac63c1/fabric/internal/topology"
)

// startTimeout bounds the wait for a child to say it serves.
const startTimeout = 30 * time.Second

// child is a process the benchmark started: it dies with the benchmark (on
// Linux), and its output is kept in memory, the first and last lines of it,
// for the error that reports it.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *lineLog

	done   chan struct{} // closed once it has exited
	err    error         // its exit, once done
	killed atomic.Bool   // by kill: its exit is no failure
}

// startChild starts bin with args as name; env is added to the benchmark's
// environment, and onLine, if not nil, sees every line of its output.
func startChild(name, bin string, env []string, onLine func(string), args ...string) (*child, error) {
	c := &child{name: name, out: &lineLog{onLine: onLine}, done: make(chan struct{})}
	c.cmd = topology.Command(bin, args...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.WaitDelay = time.Second // a grandchild holding the pipes does not hold Wait
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// await waits until a line of the child's output matches re and returns
// the match's last submatch.
func (c *child) await(ctx context.Context, re *regexp.Regexp) (string, error) {
	var found string
	err := c.poll(ctx, func() error {
		m, ok := c.out.find(re)
		if !ok {
			return fmt.Errorf("no %q in its output", re)
		}
		found = m
		return nil
	})
	return found, err
}

// poll calls ok every 10ms until it returns nil; it fails when the child
// exits, ctx ends or startTimeout passes first.
func (c *child) poll(ctx context.Context, ok func() error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		err := ok()
		if err == nil {
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("bench: %s exited (%v) while starting: %v\n%s", c.name, c.err, err, c.out.tail())
		case <-ctx.Done():
			return fmt.Errorf("bench: %s: %w: %v\n%s", c.name, context.Cause(ctx), err, c.out.tail())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL, as a crash would, and waits for the exit; exited
// then reports nothing.
func (c *child) kill() {
	c.killed.Store(true)
	_ = c.cmd.Process.Kill()
	<-c.done
}

// exited returns an error if the child is no longer running, unless it
// was killed.
func (c *child) exited() error {
	if c.killed.Load() {
		return nil
	}
	select {
	case <-c.done:
		return fmt.Errorf("bench: %s exited during the run (%v)\n%s", c.name, c.err, c.out.tail())
	default:
		return nil
	}
}

// stop sends SIGTERM, and SIGKILL after timeout, and waits for the exit.
func (c *child) stop(timeout time.Duration) error {
	select {
	case <-c.done:
		return nil // reported by exited, if it mattered
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("bench: %s still running %s after SIGTERM: killed", c.name, timeout)
	}
}

// lineLog keeps the first and the last lines written to it, and passes
// each line to onLine.
type lineLog struct {
	onLine func(string)

	mu      sync.Mutex
	partial []byte
	head    []string
	last    []string // a ring of the last keptLines lines
	next    int
}

const keptLines = 200

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = append(l.partial[:0], l.partial[i+1:]...)
		if len(l.head) < keptLines {
			l.head = append(l.head, line)
		} else if len(l.last) < keptLines {
			l.last = append(l.last, line)
		} else {
			l.last[l.next] = line
			l.next = (l.next + 1) % keptLines
		}
		if l.onLine != nil {
			l.onLine(line)
		}
	}
	return len(b), nil
}

// find returns the last submatch of the first kept line re matches.
func (l *lineLog) find(re *regexp.Regexp) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.head {
		if m := re.FindStringSubmatch(line); m != nil {
			return m[len(m)-1], true
		}
	}
	return "", false
}

// tail returns the last lines, at most 20, for an error message.
func (l *lineLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := append([]string(nil), l.head...)
	lines = append(lines, l.last[l.next:]...)
	lines = append(lines, l.last[:l.next]...)
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}
