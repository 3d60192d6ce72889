package bench

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a benchmark ran, so that numbers from two
// machines are never compared unawares.
type Machine struct {
	CPUModel    string    `json:"cpuModel"`
	CPUs        int       `json:"cpus"` // logical CPUs in /proc/cpuinfo
	MemoryBytes int64     `json:"memoryBytes"`
	Kernel      string    `json:"kernel"`
	OS          string    `json:"os"`
	Arch        string    `json:"arch"`
	GoVersion   string    `json:"goVersion"`
	Date        time.Time `json:"date"`
}

// DescribeMachine reads this machine's description from /proc; a field
// it cannot read stays empty.
func DescribeMachine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version(), Date: time.Now().UTC().Truncate(time.Second)}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		m.CPUModel, m.CPUs = parseCPUInfo(f)
		f.Close()
	}
	if m.CPUs == 0 {
		m.CPUs = runtime.NumCPU()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		m.MemoryBytes = parseMemTotal(f)
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = string(bytes.TrimSpace(b))
	}
	return m
}

// parseCPUInfo returns the first "model name" of /proc/cpuinfo and how many
// processors it lists.
func parseCPUInfo(r io.Reader) (model string, cpus int) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "processor":
			cpus++
		case "model name":
			if model == "" {
				model = strings.TrimSpace(value)
			}
		}
	}
	return model, cpus
}

// parseMemTotal returns MemTotal of /proc/meminfo in bytes, 0 if absent.
func parseMemTotal(r io.Reader) int64 {
	kb, _ := procKB(r, "MemTotal")
	return kb * 1024
}

// procKB returns the value of the line "key: N kB" of a /proc file.
func procKB(r io.Reader, key string) (int64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n, err == nil
	}
	return 0, false
}
