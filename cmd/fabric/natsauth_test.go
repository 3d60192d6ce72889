package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TestNATSAuthFlags checks what each combination of the NATS credential
// flags gives nats.go, from the command line and from FABRIC_NATS_*.
func TestNATSAuthFlags(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(creds, []byte("unused: only its name is read here"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    nats.Options
		wantErr string
	}{
		{name: "none"},
		{name: "user and password", args: []string{"--nats-user", "gateway", "--nats-password", "pw"},
			want: nats.Options{User: "gateway", Password: "pw"}},
		{name: "password from the environment", args: []string{"--nats-user", "worker"}, env: map[string]string{"FABRIC_NATS_PASSWORD": "pw"},
			want: nats.Options{User: "worker", Password: "pw"}},
		{name: "token", env: map[string]string{"FABRIC_NATS_TOKEN": "tok"}, want: nats.Options{Token: "tok"}},
		{name: "inbox prefix", args: []string{"--nats-user", "gateway", "--nats-inbox-prefix", "_INBOX.gateway"},
			want: nats.Options{User: "gateway", InboxPrefix: "_INBOX.gateway"}},
		{name: "creds", args: []string{"--nats-creds", creds}},
		{name: "password alone", args: []string{"--nats-password", "pw"}, wantErr: "--nats-password without --nats-user"},
		{name: "user and token", args: []string{"--nats-user", "u", "--nats-token", "t"}, wantErr: "exclude each other"},
		{name: "token and creds", args: []string{"--nats-token", "t", "--nats-creds", creds}, wantErr: "exclude each other"},
		{name: "bad inbox prefix", args: []string{"--nats-inbox-prefix", "_INBOX.>"}, wantErr: "invalid custom prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := newFlagSet("test")
			a := registerNATSAuth(fs)
			if _, err := parse(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			var got nats.Options
			var err error
			for _, opt := range a.options() {
				if err = opt(&got); err != nil {
					break
				}
			}
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want %q", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if got.User != tc.want.User || got.Password != tc.want.Password || got.Token != tc.want.Token || got.InboxPrefix != tc.want.InboxPrefix {
				t.Errorf("user %q password %q token %q inbox %q, want %+v", got.User, got.Password, got.Token, got.InboxPrefix, tc.want)
			}
			if withCreds := slices.Contains(tc.args, creds); withCreds != (got.UserJWT != nil && got.SignatureCB != nil) {
				t.Errorf("creds file %v, but JWT callbacks set: %v", withCreds, got.UserJWT != nil)
			}
		})
	}
}

// TestConnectNATSWithCredentials connects to a server with users: the right
// password gets in, a wrong one is refused, and the error says so without
// quoting the password.
func TestConnectNATSWithCredentials(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		Users: []*server.User{{Username: "gateway", Password: "right-password"}}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		password string
		ok       bool
	}{{"right-password", true}, {"wrong-password", false}} {
		a := &natsAuthFlags{user: "gateway", password: tc.password}
		nc, err := connectNATS(s.ClientURL(), "test", log, a.options()...)
		if tc.ok {
			if err != nil {
				t.Fatalf("%s: %v", tc.password, err)
			}
			nc.Close()
			continue
		}
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", tc.password)
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") || strings.Contains(err.Error(), tc.password) {
			t.Errorf("error %q: want an authorization violation, without the password", err)
		}
	}
}
