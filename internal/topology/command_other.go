//go:build !unix

package topology

import "syscall"

// sysProcAttr: nothing (no process groups or parent-death signal here).
func sysProcAttr() *syscall.SysProcAttr { return nil }
