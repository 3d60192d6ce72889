package auth_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed82ac63c1/fabric/auth"
)

func TestValidatePattern(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		err     string // "" means valid
	}{
		{"demo/count", ""},
		{"demo/*", ""},
		{"agent/**", ""},
		{"**", ""},
		{"*", ""},
		{"*/status", ""},
		{"a/*/c/**", ""},
		{"a/b/c/d/e/f/g/h", ""},
		{"system/x", ""},

		{"", "empty"},
		{"demo/q*", "a wildcard must be the whole segment"},
		{"*demo", "a wildcard must be the whole segment"},
		{"demo/***", "a wildcard must be the whole segment"},
		{"agent/**/x", `"**" may only be the last segment`},
		{"**/x", `"**" may only be the last segment`},
		{"demo//count", "segment 2 must be"},
		{"/demo", "segment 1 must be"},
		{"demo/", "segment 2 must be"},
		{"demo.count", "segment 1 must be"},
		{"1demo", "segment 1 must be"},
		{"dé/mo", "segment 1 must be"},
		{"demo/>", "segment 2 must be"},
		{"sys/ping", "reserved"},
		{"a/b/c/d/e/f/g/h/i", "more than 8 segments"},
		{strings.Repeat("a", 129), "longer than 128"},
	} {
		err := auth.ValidatePattern(tc.pattern)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.pattern, err)
		case tc.err != "" && (err == nil || !errors.Is(err, auth.ErrPattern) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: got %v, want ErrPattern with %q", tc.pattern, err, tc.err)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, route string
		want           bool
	}{
		{"demo/count", "demo/count", true},
		{"demo/count", "demo/counter", false},
		{"demo/count", "demo", false},
		{"demo/count", "demo/count/x", false},
		{"Demo/count", "demo/count", false}, // case-sensitive, like subjects

		{"demo/*", "demo/count", true},
		{"demo/*", "demo", false},
		{"demo/*", "demo/a/b", false},
		{"demo/*", "demos/count", false},
		{"*/status", "billing/status", true},
		{"*/status", "billing/eu/status", false},
		{"*", "echo", true},
		{"*", "demo/count", false},

		{"agent/**", "agent/x", true},
		{"agent/**", "agent/x/y/z", true},
		{"agent/**", "agent", false},
		{"agent/**", "agents/x", false},
		{"**", "anything", true},
		{"**", "a/b/c", true},
		{"a/*/c/**", "a/b/c/d", true},
		{"a/*/c/**", "a/b/c", false},

		// Invalid patterns match nothing.
		{"demo/q*", "demo/q1", false},
		{"demo/q*", "demo/q*", false},
		{"**/x", "a/x", false},
		{"", "demo", false},
		{"demo", "", false},
	} {
		if got := auth.MatchPattern(tc.pattern, tc.route); got != tc.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tc.pattern, tc.route, got, tc.want)
		}
	}
}

func TestMatchPatternAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { auth.MatchPattern("a/*/c/**", "a/b/c/d/e") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

const policyJSON = `{
  "everyone": ["public/**"],
  "roles": {
    "admin":   ["**"],
    "support": ["demo/*", "agent/**"]
  }
}`

const policyYAML = `
everyone:
  - public/**
roles:
  admin: ["**"]
  support:
    - demo/*
    - agent/**
`

func TestPolicyAllowed(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "policy.json")
	yamlPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(jsonPath, []byte(policyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(yamlPath, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	fromJSON, err := auth.LoadPolicy(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := auth.LoadPolicy(yamlPath)
	if err != nil {
		t.Fatal(err)
	}

	user := auth.Identity{User: "u"}
	support := auth.Identity{User: "s", Roles: []string{"support"}}
	admin := auth.Identity{User: "a", Roles: []string{"nobody", "admin"}}
	narrowAdmin := auth.Identity{User: "a", Roles: []string{"admin"}, Routes: []string{"demo/count"}}
	narrowUser := auth.Identity{User: "n", Routes: []string{"demo/*"}}
	noRoutes := auth.Identity{User: "z", Roles: []string{"admin"}, Routes: []string{}}

	for _, tc := range []struct {
		name  string
		id    auth.Identity
		route string
		file  bool // with the policy file
		none  bool // with no policy
	}{
		{"everyone: public route", user, "public/news", true, true},
		{"no role: other route", user, "demo/count", false, true},
		{"support: demo", support, "demo/count", true, true},
		{"support: agent deep", support, "agent/x/y", true, true},
		{"support: not billing", support, "billing/pay", false, true},
		{"support: public", support, "public/news", true, true},
		{"unknown role ignored, admin: all", admin, "billing/pay", true, true},
		{"route claim narrows admin", narrowAdmin, "demo/count", true, true},
		{"route claim narrows admin: denied", narrowAdmin, "billing/pay", false, false},
		{"route claim cannot widen the policy", narrowUser, "demo/count", false, true},
		{"route claim alone: denied", narrowUser, "billing/pay", false, false},
		{"empty route claim allows nothing", noRoutes, "public/news", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []*auth.Policy{fromJSON, fromYAML} {
				if got := p.Allowed(tc.id, tc.route); got != tc.file {
					t.Errorf("with the policy: %v, want %v", got, tc.file)
				}
			}
			var none *auth.Policy
			if got := none.Allowed(tc.id, tc.route); got != tc.none {
				t.Errorf("with no policy: %v, want %v", got, tc.none)
			}
		})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", ``, "empty policy"},
		{"not an object", `[1, 2]`, "policy"},
		{"unknown field", `{"role": {"admin": ["**"]}}`, "field role not found"},
		{"bad pattern in everyone", `{"everyone": ["demo/q*"]}`, `everyone[0]: auth: invalid route pattern "demo/q*"`},
		{"bad pattern in a role", `{"roles": {"ops": ["ok/*", "**/x"]}}`, `roles.ops[1]: auth: invalid route pattern "**/x"`},
		{"bad role name", `{"roles": {"": ["**"]}}`, "role"},
		{"unquoted YAML wildcard", "everyone:\n  - **\n", "policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.ParsePolicy([]byte(tc.data))
			if !errors.Is(err, auth.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrConfig with %q", err, tc.want)
			}
		})
	}
	_, err := auth.LoadPolicy(filepath.Join(t.TempDir(), "missing.json"))
	if !errors.Is(err, auth.ErrConfig) {
		t.Errorf("missing file: %v", err)
	}
}
