package compose_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsUserOf is the NATS user (deploy/nats/permissions.conf) each fabric
// service connects as: agents make child requests, so they are callers.
var natsUserOf = map[string]string{
	"gateway-1": "gateway",
	"gateway-2": "gateway",
	"worker":    "worker",
	"agents":    "caller",
}

// natsAuth returns the NATS options of a fabric service's credentials, as
// its FABRIC_NATS_* variables give them to fabric.
func natsAuth(s types.ServiceConfig) []nats.Option {
	user, _ := env(s, "FABRIC_NATS_USER")
	password, _ := env(s, "FABRIC_NATS_PASSWORD")
	opts := []nats.Option{nats.UserInfo(user, password)}
	if p, ok := env(s, "FABRIC_NATS_INBOX_PREFIX"); ok {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	return opts
}

// TestNATSUsers checks that every fabric service connects as its user of
// the NATS configuration, with the password the nodes give that user, and
// with reply inboxes that user may subscribe to; that every node knows the
// same users; and that a password set in the environment reaches both the
// nodes and the services.
func TestNATSUsers(t *testing.T) {
	check := func(t *testing.T, p *types.Project) map[string]string {
		t.Helper()
		var users map[string]*server.User
		for _, name := range natsNodes {
			opts := natsOptions(t, service(t, p, name))
			if opts.NoAuthUser != "" {
				t.Errorf("%s: no_auth_user %q: clients without credentials get in", name, opts.NoAuthUser)
			}
			got := map[string]*server.User{}
			for _, u := range opts.Users {
				got[u.Username] = u
			}
			if users == nil {
				users = got
				continue
			}
			for n, u := range got {
				if users[n] == nil || users[n].Password != u.Password {
					t.Errorf("%s: user %s differs from %s's", name, n, natsNodes[0])
				}
			}
		}
		for _, want := range []string{"gateway", "worker", "caller", "tail", "auth"} {
			if users[want] == nil || users[want].Password == "" || users[want].Permissions == nil {
				t.Errorf("the NATS configuration has no user %s with a password and permissions", want)
			}
		}
		passwords := map[string]string{}
		for _, name := range fabricServices {
			s := service(t, p, name)
			user, _ := env(s, "FABRIC_NATS_USER")
			password, _ := env(s, "FABRIC_NATS_PASSWORD")
			if user != natsUserOf[name] {
				t.Errorf("%s: FABRIC_NATS_USER %q, want %q", name, user, natsUserOf[name])
			}
			u := users[user]
			if u == nil {
				t.Errorf("%s: NATS user %q is not in the configuration", name, user)
				continue
			}
			if password != u.Password {
				t.Errorf("%s: FABRIC_NATS_PASSWORD is not the password the nodes give %s", name, user)
			}
			passwords[user] = password
			inbox, _ := env(s, "FABRIC_NATS_INBOX_PREFIX")
			if want := "_INBOX." + user; inbox != want || !slices.Contains(u.Permissions.Subscribe.Allow, want+".>") {
				t.Errorf("%s: FABRIC_NATS_INBOX_PREFIX %q; want %q, which user %s may subscribe to (%v)", name, inbox, want, user, u.Permissions.Subscribe.Allow)
			}
		}
		return passwords
	}

	for user, password := range check(t, loadProject(t)) {
		if !strings.Contains(password, "CHANGE-ME") {
			t.Errorf("the default NATS password of %s, %q, is not marked CHANGE-ME", user, password)
		}
	}

	// Passwords from the environment reach the nodes and the services.
	set := map[string]string{}
	for _, user := range []string{"gateway", "worker", "caller", "tail", "auth"} {
		v := "NATS_" + strings.ToUpper(user) + "_PASSWORD"
		set[user] = "s3cret-" + user
		t.Setenv(v, set[user])
	}
	dir := rootPath(t, ".")
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")}, cli.WithWorkingDirectory(dir), cli.WithOsEnv)
	if err != nil {
		t.Fatal(err)
	}
	withEnv, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for user, password := range check(t, withEnv) {
		if password != set[user] {
			t.Errorf("%s's password %q with NATS_%s_PASSWORD=%s set", user, password, strings.ToUpper(user), set[user])
		}
	}
}
