package topology

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
)

// LineLog is an io.Writer for a child process's output: it splits what is
// written into lines, hands each to OnLine, and keeps the first Keep lines
// (to find what says the child serves) and the last Keep (for an error
// message). It is safe for concurrent writes.
type LineLog struct {
	// OnLine, if not nil, gets each line, without its newline, in order,
	// under the log's lock.
	OnLine func(line []byte)
	// Keep is how many lines are kept from the start, and again from the
	// end. 0 means 200.
	Keep int

	mu      sync.Mutex
	partial []byte
	head    []string
	last    []string // a ring of the last Keep lines after head
	next    int
}

func (l *LineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(l.partial[:i])
		l.partial = append(l.partial[:0], l.partial[i+1:]...)
	}
	return len(b), nil
}

// Flush hands on a last line that has no newline.
func (l *LineLog) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.line(l.partial)
		l.partial = l.partial[:0]
	}
}

func (l *LineLog) line(b []byte) {
	keep := l.Keep
	if keep <= 0 {
		keep = 200
	}
	switch s := string(b); {
	case len(l.head) < keep:
		l.head = append(l.head, s)
	case len(l.last) < keep:
		l.last = append(l.last, s)
	default:
		l.last[l.next] = s
		l.next = (l.next + 1) % keep
	}
	if l.OnLine != nil {
		l.OnLine(b)
	}
}

// Find returns the last submatch of the first kept line from the start
// that re matches.
func (l *LineLog) Find(re *regexp.Regexp) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.head {
		if m := re.FindStringSubmatch(line); m != nil {
			return m[len(m)-1], true
		}
	}
	return "", false
}

// Tail returns the last n kept lines, each behind "  | ", for an error
// message.
func (l *LineLog) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := append([]string(nil), l.head...)
	lines = append(lines, l.last[l.next:]...)
	lines = append(lines, l.last[:l.next]...)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}
