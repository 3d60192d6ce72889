//go:build unix && !linux

package topology

import "syscall"

// sysProcAttr: a process group of its own (no parent-death signal outside
// Linux).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
