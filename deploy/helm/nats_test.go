package helm_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
	"sigs.k8s.io/yaml"
)

// natsValues is the part of nats-values.yaml this test reads.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
		} `json:"cluster"`
		JetStream struct {
			Enabled bool `json:"enabled"`
		} `json:"jetstream"`
		Merge map[string]any `json:"merge"`
	} `json:"config"`
	Container struct {
		Env map[string]struct {
			ValueFrom struct {
				SecretKeyRef struct {
					Name string `json:"name"`
					Key  string `json:"key"`
				} `json:"secretKeyRef"`
			} `json:"valueFrom"`
		} `json:"env"`
	} `json:"container"`
}

// unquoted is the NATS chart's syntax for a value written into nats.conf
// without quotes: "<< 2MB >>", "<< $VAR >>".
var unquoted = regexp.MustCompile(`"<< (.*?) >>"`)

// TestNATSValues checks deploy/helm/nats-values.yaml against deploy/nats:
// config.merge, rendered as the official NATS chart renders it (JSON, with
// << … >> unquoted) and parsed by nats-server's own parser, must give the
// users, permissions and client settings that nats.conf and
// permissions.conf give the compose cluster; every password must come from
// the Secret key the fabric chart reads for that user (its name).
func TestNATSValues(t *testing.T) {
	raw, err := os.ReadFile("nats-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v natsValues
	if err := yaml.Unmarshal(raw, &v); err != nil { // the file has more than this test reads
		t.Fatal(err)
	}
	if !v.Config.Cluster.Enabled || v.Config.Cluster.Replicas != 3 || !v.Config.JetStream.Enabled {
		t.Errorf("cluster %+v, jetstream %+v: want 3 nodes with JetStream", v.Config.Cluster, v.Config.JetStream)
	}

	// Every user's password, from the environment nats-server gets.
	for _, user := range natsUsers {
		name := "NATS_" + map[string]string{"gateway": "GATEWAY", "worker": "WORKER", "caller": "CALLER", "tail": "TAIL", "auth": "AUTH"}[user] + "_PASSWORD"
		t.Setenv(name, "pw-"+user)
		ref := v.Container.Env[name].ValueFrom.SecretKeyRef
		if ref.Name != "fabric-nats" || ref.Key != user {
			t.Errorf("container.env %s from secret %q key %q, want fabric-nats key %s (as the fabric chart reads it)", name, ref.Name, ref.Key, user)
		}
	}
	t.Setenv("NATS_SERVER_NAME", "n1")

	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v.Config.Merge); err != nil {
		t.Fatal(err)
	}
	rendered := unquoted.ReplaceAllString(js.String(), "$1")
	got, err := conf.Parse(rendered)
	if err != nil {
		t.Fatalf("config.merge as nats.conf: %v\n%s", err, rendered)
	}
	want, err := conf.ParseFile(filepath.Join("..", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ping_interval", "ping_max", "max_payload", "authorization"} {
		if !reflect.DeepEqual(got[key], want[key]) {
			t.Errorf("%s:\n got %#v\nwant %#v (deploy/nats)", key, got[key], want[key])
		}
	}
	var users []string
	for _, u := range got["authorization"].(map[string]any)["users"].([]any) {
		users = append(users, u.(map[string]any)["user"].(string))
	}
	slices.Sort(users)
	if w := slices.Sorted(slices.Values(natsUsers)); !slices.Equal(users, w) {
		t.Errorf("users %v, want %v", users, w)
	}
}
