package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
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
	out  *topology.LineLog

	done   chan struct{} // closed once it has exited
	err    error         // its exit, once done
	killed atomic.Bool   // by kill: its exit is no failure
}

// startChild starts bin with args as name; env is added to the benchmark's
// environment, and onLine, if not nil, sees every line of its output.
func startChild(name, bin string, env []string, onLine func(string), args ...string) (*child, error) {
	c := &child{name: name, out: &topology.LineLog{OnLine: func(b []byte) {
		if onLine != nil {
			onLine(string(b))
		}
	}}, done: make(chan struct{})}
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
		m, ok := c.out.Find(re)
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
			return fmt.Errorf("bench: %s exited (%v) while starting: %v\n%s", c.name, c.err, err, c.out.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("bench: %s: %w: %v\n%s", c.name, context.Cause(ctx), err, c.out.Tail(20))
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
		return fmt.Errorf("bench: %s exited during the run (%v)\n%s", c.name, c.err, c.out.Tail(20))
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
