package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed82ac63c1/fabric/auth"
)

// The auth flags make one authenticator or none, and refuse combinations
// that would silently drop a setting.
func TestAuthFlags(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("a test secret of at least thirty-two bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("everyone: [\"demo/*\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		auth    bool   // an AuthConfig is made
		wantErr string // "" for none
	}{
		{"none", nil, false, ""},
		{"secret file", []string{"--jwt-secret-file", secretFile, "--jwt-issuer", "me"}, true, ""},
		{"secret and policy", []string{"--jwt-secret", strings.Repeat("s", 32), "--policy", policyFile, "--jwt-roles-claim", "roles"}, true, ""},
		{"short secret", []string{"--jwt-secret", "short"}, false, "32"},
		{"both secrets", []string{"--jwt-secret", strings.Repeat("s", 32), "--jwt-secret-file", secretFile}, false, "exclusive"},
		{"hook and keys", []string{"--auth-hook", "--jwt-secret-file", secretFile}, false, "exclusive"},
		{"policy alone", []string{"--policy", policyFile}, false, "needs an authenticator"},
		{"issuer alone", []string{"--jwt-issuer", "me"}, false, "without a key source"},
		{"missing secret file", []string{"--jwt-secret-file", filepath.Join(dir, "nope")}, false, "no such file"},
		{"bad policy", []string{"--jwt-secret-file", secretFile, "--policy", secretFile}, false, "policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("gateway")
			var a authFlags
			a.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, closer, err := a.config(nil, "fabric", nil)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got error %v, want one saying %q", err, tc.wantErr)
			case tc.wantErr != "":
				if !errors.Is(err, errAuthConfig) && !errors.Is(err, auth.ErrConfig) {
					t.Errorf("error %v wraps neither errAuthConfig nor auth.ErrConfig", err)
				}
				return
			}
			defer closer.Close()
			if (cfg != nil) != tc.auth {
				t.Fatalf("AuthConfig %+v, want one: %v", cfg, tc.auth)
			}
		})
	}
}
