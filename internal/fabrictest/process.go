package fabrictest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildFabric builds the fabric binary into dir and returns its path.
func BuildFabric(dir string) (string, error) {
	bin := filepath.Join(dir, "fabric")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/seed82ac63c1/fabric/cmd/fabric")
	cmd.Stderr = os.Stderr
	return bin, cmd.Run()
}

// Process is a child process whose output a test watches. It is killed and
// reaped at cleanup if the test has not waited for it.
type Process struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdout SyncBuffer
	stderr SyncBuffer
	done   chan struct{}
	err    error
}

// StartProcess starts bin with args and extra environment variables.
func StartProcess(t testing.TB, env []string, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\nstderr:\n%s", filepath.Base(bin), p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// WaitOutput waits until stdout or stderr matches re and returns the first
// submatch (or the whole match).
func (p *Process) WaitOutput(re *regexp.Regexp, d time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, out := range []string{p.stdout.String(), p.stderr.String()} {
			if m := re.FindStringSubmatch(out); m != nil {
				return m[len(m)-1]
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("process exited (%v) before printing %s", p.err, re)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %s within %s", re, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Wait waits up to d for the process to exit and returns its exit code.
func (p *Process) Wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("process still running after %s", d)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

// Stdout returns what the process printed on stdout so far.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr returns what the process printed on stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads: a
// child process's output, read while it runs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
