package compose_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dockerfile is what the tests read of the Dockerfile.
type dockerfile struct {
	args       map[string]string // ARGs before the first FROM, with their defaults
	stages     []stage
	entrypoint string // the final stage's ENTRYPOINT, exec form, first word
}

type stage struct {
	image, name  string
	instructions [][2]string // instruction (upper case), rest of the line
}

// parseDockerfile reads the Dockerfile as a list of instructions: line
// continuations joined, comments dropped.
func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(rootPath(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := dockerfile{args: map[string]string{}}
	var logical []string
	cont := ""
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cont == "") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cont += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		logical = append(logical, cont+trimmed)
		cont = ""
	}
	for _, l := range logical {
		instr, rest, _ := strings.Cut(l, " ")
		instr = strings.ToUpper(instr)
		rest = strings.TrimSpace(rest)
		switch {
		case instr == "FROM":
			words := strings.Fields(rest)
			var st stage
			for i := 0; i < len(words); i++ {
				switch {
				case strings.HasPrefix(words[i], "--"):
				case strings.EqualFold(words[i], "AS") && i+1 < len(words):
					st.name = words[i+1]
					i++
				default:
					st.image = os.Expand(words[i], func(k string) string { return df.args[k] })
				}
			}
			df.stages = append(df.stages, st)
		case instr == "ARG" && len(df.stages) == 0:
			for _, a := range strings.Fields(rest) {
				k, v, _ := strings.Cut(a, "=")
				df.args[k] = v
			}
		case len(df.stages) > 0:
			st := &df.stages[len(df.stages)-1]
			st.instructions = append(st.instructions, [2]string{instr, rest})
		}
	}
	if len(df.stages) == 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	for _, in := range df.stages[len(df.stages)-1].instructions {
		if in[0] == "ENTRYPOINT" {
			var words []string
			if err := json.Unmarshal([]byte(in[1]), &words); err != nil || len(words) == 0 {
				t.Fatalf("Dockerfile: ENTRYPOINT %s is not in exec form: %v", in[1], err)
			}
			df.entrypoint = words[0]
		}
	}
	return df
}

// TestDockerfile checks the image: a static fabric built from ./cmd/fabric
// with the go.mod's Go, on distroless as a non-root user, fabric as the
// entrypoint.
func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)
	final := df.stages[len(df.stages)-1]
	if final.image != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %q, want gcr.io/distroless/static-debian12:nonroot", final.image)
	}
	var build *stage
	for i := range df.stages[:len(df.stages)-1] {
		if strings.HasPrefix(df.stages[i].image, "golang:") {
			build = &df.stages[i]
		}
	}
	if build == nil {
		t.Fatal("no golang build stage")
	}

	// The builder's Go is at least go.mod's.
	modGo := goModLine(t, "go")
	goVersion := strings.TrimSuffix(strings.TrimPrefix(build.image, "golang:"), "-alpine")
	if compareVersions(goVersion, modGo) < 0 {
		t.Errorf("build stage %s: Go %s is older than go.mod's go %s", build.image, goVersion, modGo)
	}

	// go build: static, reproducible paths, stripped, ./cmd/fabric.
	var built string
	cacheMods, cacheBuild := false, false
	for _, in := range build.instructions {
		if in[0] != "RUN" {
			continue
		}
		cacheMods = cacheMods || strings.Contains(in[1], "--mount=type=cache,target=/go/pkg/mod")
		if !strings.Contains(in[1], "go build") {
			continue
		}
		cacheBuild = cacheBuild || strings.Contains(in[1], "--mount=type=cache,target=/root/.cache/go-build")
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, " ./cmd/fabric"} {
			if !strings.Contains(in[1], want) {
				t.Errorf("go build lacks %s: %s", want, in[1])
			}
		}
		if m := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(in[1]); m != nil {
			built = m[1]
		}
	}
	if built == "" {
		t.Fatal("no `go build -o FILE` in the build stage")
	}
	if !cacheMods || !cacheBuild {
		t.Errorf("cache mounts: module cache %v, build cache %v; want both", cacheMods, cacheBuild)
	}

	// The final stage copies that binary and runs it, as nonroot.
	copied := false
	for _, in := range final.instructions {
		switch in[0] {
		case "COPY":
			f := strings.Fields(in[1])
			if len(f) == 3 && f[0] == "--from="+build.name && f[1] == built && f[2] == df.entrypoint {
				copied = true
			}
		case "USER":
			if u := strings.Split(in[1], ":")[0]; u != "nonroot" && u != "65532" {
				t.Errorf("USER %s, want nonroot", in[1])
			}
		case "RUN":
			t.Errorf("RUN in the final stage: distroless has no shell: %s", in[1])
		}
	}
	if !copied {
		t.Errorf("the final stage does not COPY --from=%s %s %s", build.name, built, df.entrypoint)
	}
	if path.Base(df.entrypoint) != "fabric" {
		t.Errorf("ENTRYPOINT %q, want the fabric binary", df.entrypoint)
	}
}

// goModLine returns the first word after key at the start of a line of
// go.mod: goModLine(t, "go") is its Go version,
// goModLine(t, "github.com/nats-io/nats-server/v2") the version required.
func goModLine(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile(rootPath(t, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `\s+(\S+)`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("go.mod has no %s line", key)
	}
	return m[1]
}

// compareVersions compares two Go versions such as 1.26 and 1.26.8.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// dockerignore holds .dockerignore's patterns. Docker anchors them at the
// context's root; ** matches any number of folders; a pattern that matches
// a folder leaves out everything in it; a later !pattern takes back.
type dockerignore []string

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	b, err := os.ReadFile(rootPath(t, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var d dockerignore
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		p := path.Clean(strings.TrimPrefix(strings.TrimPrefix(line, "!"), "/"))
		if neg {
			p = "!" + p
		}
		d = append(d, p)
	}
	return d
}

// excludes reports whether the build context leaves out rel (slash
// separated, relative to the root).
func (d dockerignore) excludes(rel string) bool {
	parts := strings.Split(rel, "/")
	out := false
	for _, p := range d {
		neg := strings.HasPrefix(p, "!")
		pat := strings.Split(strings.TrimPrefix(p, "!"), "/")
		for n := 1; n <= len(parts); n++ {
			if globMatch(pat, parts[:n]) {
				out = !neg
				break
			}
		}
	}
	return out
}

func globMatch(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if globMatch(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	ok, err := path.Match(pat[0], parts[0])
	return err == nil && ok && globMatch(pat[1:], parts[1:])
}

// TestDockerignore checks that the build context keeps every file
// `go build ./cmd/fabric` reads, and leaves out the bulky rest.
func TestDockerignore(t *testing.T) {
	d := readDockerignore(t)
	cmd := exec.Command("go", "list", "-deps", "-json", "./cmd/fabric")
	cmd.Dir = rootPath(t, ".")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var pkg struct {
			Dir        string
			GoFiles    []string
			EmbedFiles []string
			Module     *struct{ Main bool }
		}
		if err := dec.Decode(&pkg); err != nil {
			t.Fatal(err)
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		rel, err := filepath.Rel(cmd.Dir, pkg.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(pkg.GoFiles, pkg.EmbedFiles...) {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, f := range needed {
		if d.excludes(f) {
			t.Errorf(".dockerignore leaves out %s, which go build ./cmd/fabric reads", f)
		}
	}
	for _, f := range []string{".git/HEAD", "web/node_modules/x/index.js", "clients/typescript/node_modules/y", "fabric", "bin/fabric"} {
		if !d.excludes(f) {
			t.Errorf(".dockerignore keeps %s in the build context", f)
		}
	}
}

// TestDockerignoreMatcher pins the matcher's reading of Docker's rules.
func TestDockerignoreMatcher(t *testing.T) {
	d := dockerignore{"**/node_modules", "dist", "docs", "!docs/keep.md", "*.test"}
	for f, want := range map[string]bool{
		"node_modules/a":       true,
		"web/node_modules/a/b": true,
		"dist/x":               true,
		"web/dist/index.html":  false, // anchored at the root
		"docs/a.md":            true,
		"docs/keep.md":         false,
		"fabric.test":          true,
		"cmd/fabric/main.go":   false,
	} {
		if got := d.excludes(f); got != want {
			t.Errorf("excludes(%q) = %v, want %v", f, got, want)
		}
	}
}
