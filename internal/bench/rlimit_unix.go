//go:build unix

package bench

import "syscall"

// raiseFileLimit raises this process's soft limit of open files to its hard
// limit and returns it. Children started afterwards inherit it: the Go
// runtime restores the limit it found at start-up for children only while
// the program has not set one itself.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return l.Cur, nil
}
