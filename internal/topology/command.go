package topology

import "os/exec"

// Command returns the command that runs bin with args as a child that dies
// with its parent, in its own process group: a Ctrl-C in a terminal reaches
// the parent alone, which stops its children in its own order. Dying with
// the parent needs Linux (the parent-death signal); elsewhere a parent
// killed outright leaves its children running.
func Command(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = sysProcAttr()
	return cmd
}
