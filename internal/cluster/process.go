package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/internal/topology"
)

// Timeouts of the harness's own waits. They bound a broken run; nothing is
// asserted against them.
const (
	readyTimeout = 30 * time.Second // a process's start, until it serves
	exitTimeout  = 30 * time.Second // a signalled process's exit
)

// Process is one child process of a cluster: a NATS node, a gateway or a
// worker. It can be signalled and restarted with the same arguments. Its
// methods that act on it (Kill, Term, Stop, Cont, Signal, WaitExit, Restart)
// fail the test on error and must be called from the test's goroutine; the
// others are safe from any goroutine.
type Process struct {
	Name string // n1, gw0, w2…

	c     *Cluster
	bin   string
	args  []string
	ready func() error // waits until a fresh incarnation serves

	mu      sync.Mutex
	cmd     *exec.Cmd
	out     *fabrictest.SyncBuffer // the current incarnation's stdout and stderr
	done    chan struct{}
	exitErr error
	ending  bool // we sent the current incarnation a signal that ends it
	stopped bool
	past    []*fabrictest.SyncBuffer // earlier incarnations, for the failure report
}

func (c *Cluster) newProcess(name, bin string, args []string) *Process {
	p := &Process{Name: name, c: c, bin: bin, args: args}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p
}

// start starts a new incarnation and waits until it serves.
func (p *Process) start() error {
	cmd := topology.Command(p.bin, p.args...) // dies with the test binary
	out := &fabrictest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = environ()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	if p.out != nil {
		p.past = append(p.past, p.out)
	}
	p.cmd, p.out, p.done, p.exitErr, p.ending, p.stopped = cmd, out, done, nil, false, false
	p.mu.Unlock()
	p.c.mu.Lock()
	p.c.pids = append(p.c.pids, cmd.Process.Pid)
	p.c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	if p.ready == nil {
		return nil
	}
	if err := p.ready(); err != nil {
		return fmt.Errorf("%s not ready: %w", p.Name, err)
	}
	return nil
}

// environ is the test's environment without FABRIC_* variables, which
// would set flags the harness did not choose.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FABRIC_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitOutput waits until the current incarnation's output matches re and
// returns the last submatch, or fails when it exits first.
func (p *Process) waitOutput(re *regexp.Regexp) (string, error) {
	p.mu.Lock()
	out, done := p.out, p.done
	p.mu.Unlock()
	deadline := time.Now().Add(readyTimeout)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[len(m)-1], nil
		}
		select {
		case <-done:
			return "", fmt.Errorf("exited (%v) before printing %s:\n%s", p.exitError(), re, tail(out.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %s within %s", re, readyTimeout)
		}
	}
}

// PID returns the current incarnation's process id.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Running reports whether the current incarnation has not exited (it may be
// stopped).
func (p *Process) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false // never started
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Stopped reports whether the process is stopped by SIGSTOP.
func (p *Process) Stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// Output returns what the current incarnation printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Signal sends sig to the process. SIGKILL, SIGTERM and SIGINT mark the exit
// that follows as expected; SIGSTOP returns once the process is stopped.
func (p *Process) Signal(sig syscall.Signal) {
	p.c.t.Helper()
	p.mu.Lock()
	proc := p.cmd.Process
	switch sig {
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT:
		p.ending = true
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	p.mu.Unlock()
	if err := proc.Signal(sig); err != nil {
		p.c.t.Fatalf("%s: signal %v: %v", p.Name, sig, err)
	}
	if sig == syscall.SIGSTOP {
		if err := waitState(proc.Pid, 'T'); err != nil {
			p.c.t.Fatalf("%s: %v", p.Name, err)
		}
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	p.c.t.Helper()
	p.Signal(syscall.SIGKILL)
	p.WaitExit()
}

// abandon ends a start that failed: the process is killed if it runs, and
// its exit, whether asked for or its own (a port taken), is not an error.
func (p *Process) abandon() {
	p.mu.Lock()
	p.ending = true
	p.mu.Unlock()
	if p.Running() {
		p.Kill()
	}
}

// Term sends SIGTERM and waits for the process to exit: it drains first.
func (p *Process) Term() {
	p.c.t.Helper()
	p.Signal(syscall.SIGTERM)
	p.WaitExit()
}

// Stop sends SIGSTOP and returns once the process is stopped: it keeps its
// sockets open but does nothing.
func (p *Process) Stop() {
	p.c.t.Helper()
	p.Signal(syscall.SIGSTOP)
}

// Cont sends SIGCONT to a stopped process.
func (p *Process) Cont() {
	p.c.t.Helper()
	p.Signal(syscall.SIGCONT)
}

// WaitExit waits for the process to exit and returns its exit code (-1 when
// a signal ended it).
func (p *Process) WaitExit() int {
	p.c.t.Helper()
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-time.After(exitTimeout):
		p.c.t.Fatalf("%s still running %s after its signal", p.Name, exitTimeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.ProcessState.ExitCode()
}

// Restart starts the process again with the same arguments and waits until
// it serves. The previous incarnation must have exited.
func (p *Process) Restart() {
	p.c.t.Helper()
	if p.Running() {
		p.c.t.Fatalf("%s: restart while running", p.Name)
	}
	if err := p.start(); err != nil {
		p.c.t.Fatal(err)
	}
}

func (p *Process) exitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// end kills the current incarnation if it runs (waking it first if it is
// stopped) and waits for it, then reports what went wrong in any
// incarnation: an exit nobody asked for, a panic, a data race.
func (p *Process) end() {
	t := p.c.t
	p.mu.Lock()
	cmd, done, ending := p.cmd, p.done, p.ending
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		if !ending {
			t.Errorf("%s exited on its own: %v", p.Name, p.exitError())
		}
	default:
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-done
	}
	p.mu.Lock()
	outs := append(p.past[:len(p.past):len(p.past)], p.out)
	p.mu.Unlock()
	for i, out := range outs {
		if m := crashRE.FindString(out.String()); m != "" {
			t.Errorf("%s (run %d) printed %q:\n%s", p.Name, i+1, m, tail(out.String()))
		}
	}
	if t.Failed() {
		for i, out := range outs {
			t.Logf("%s (run %d of %d) output:\n%s", p.Name, i+1, len(outs), tail(out.String()))
		}
	}
}

// crashRE finds what a Go program prints when it crashes or the race
// detector finds a race.
var crashRE = regexp.MustCompile(`(?m)^(panic: |fatal error: |WARNING: DATA RACE).*`)

// waitState waits until /proc says the process is in state (T: stopped).
func waitState(pid int, state byte) error {
	deadline := time.Now().Add(exitTimeout)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return err
		}
		// pid (comm) state …: comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == state {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d not in state %c after %s", pid, state, exitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether a process with pid exists (a zombie counts).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// tail returns the end of a long output, enough to see what went wrong.
func tail(s string) string {
	const max = 32 << 10
	if len(s) <= max {
		return s
	}
	s = s[len(s)-max:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…\n" + s
}
