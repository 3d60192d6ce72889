package topology

import "syscall"

// sysProcAttr: SIGKILL when the parent dies, and a process group of its
// own. The parent-death signal follows the thread that started the child;
// the Go runtime ends a thread only when a goroutine locked to it returns
// without unlocking, which no caller of Command does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
