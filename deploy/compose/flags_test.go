package compose_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
)

var usageFlagRE = regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`)

// TestFabricCommandLines runs the fabric binary with each fabric service's
// command line and healthcheck, plus -h: the flags must all parse (fabric
// exits 2 on -h, 1 on a flag it does not know or a bad value), and every
// FABRIC_* variable a service sets must be a flag of its command.
func TestFabricCommandLines(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the fabric binary")
	}
	bin, err := fabrictest.BuildFabric(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := loadProject(t)
	for _, name := range fabricServices {
		s := service(t, p, name)
		lines := [][]string{s.Command}
		if hc := s.HealthCheck; hc != nil && len(hc.Test) > 2 {
			lines = append(lines, hc.Test[2:]) // after CMD and the binary
		}
		for i, args := range lines {
			proc := fabrictest.StartProcess(t, nil, bin, append(append([]string{}, args...), "-h")...)
			code := proc.Wait(20 * time.Second)
			if code != 2 || strings.Contains(proc.Stderr(), "fabric:") {
				t.Errorf("%s: fabric %s: exit %d, want 2 (help)\n%s", name, strings.Join(args, " "), code, proc.Stderr())
				continue
			}
			if i > 0 {
				continue
			}
			flags := map[string]bool{}
			for _, m := range usageFlagRE.FindAllStringSubmatch(proc.Stderr(), -1) {
				flags[m[1]] = true
			}
			for k := range s.Environment {
				if f, ok := strings.CutPrefix(k, "FABRIC_"); ok && !flags[strings.ReplaceAll(strings.ToLower(f), "_", "-")] {
					t.Errorf("%s: %s is no flag of fabric %s", name, k, args[0])
				}
			}
		}
	}
}
