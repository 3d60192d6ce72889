package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/internal/topology"
)

var embeddedNATSRE = topology.EmbeddedNATSReady

// TestGatewayEmbedsNATS runs `fabric gateway --embed-nats`: the gateway is
// the NATS node (JetStream included, for --durable), a worker process and a
// second gateway connect to it as to any NATS server, and requests go
// through both gateways; SIGTERM stops the gateway cleanly.
func TestGatewayEmbedsNATS(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	// port -1: a random free port, which the gateway logs.
	body := fmt.Sprintf("host: \"127.0.0.1\"\nport: -1\njetstream {\n  store_dir: %q\n}\n", filepath.Join(dir, "js"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := fabrictest.StartProcess(t, nil, fabricBin, "gateway", "--listen", "127.0.0.1:0", "--embed-nats", conf, "--durable")
	natsURL := gw.WaitOutput(embeddedNATSRE, 20*time.Second)
	addr := gw.WaitOutput(listeningRE, 20*time.Second)
	worker := fabrictest.StartProcess(t, nil, fabricBin, "worker", "--nats", natsURL, "--demo")
	worker.WaitOutput(regexp.MustCompile(`worker serving`), 20*time.Second)
	other := fabrictest.StartProcess(t, nil, fabricBin, "gateway", "--listen", "127.0.0.1:0", "--nats", natsURL, "--durable")
	otherAddr := other.WaitOutput(listeningRE, 20*time.Second)

	const want = "demo/count:progress#1 demo/count:progress#2 demo/count:response#3 demo/count:finish#4"
	for _, a := range []string{addr, otherAddr} {
		if code, msgs := call(t, "ws://"+a+"/ws", "demo/count", `{"n":2}`); code != 0 || eventTypes(msgs) != want {
			t.Fatalf("through %s: exit %d, events %s; want %s", a, code, eventTypes(msgs), want)
		}
	}

	for _, p := range []*fabrictest.Process{other, worker, gw} {
		p.Signal(syscall.SIGTERM)
		if code := p.Wait(20 * time.Second); code != 0 {
			t.Fatalf("exit %d\n%s", code, p.Stderr())
		}
	}
}

// TestGatewayEmbedsNATSWithTLS: a node whose clients must use TLS still
// takes the gateway's own connection, a pipe, without it; the inspector's
// connection too.
func TestGatewayEmbedsNATSWithTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSignedCert(t, dir)
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("host: \"127.0.0.1\"\nport: -1\ntls {\n  cert_file: %q\n  key_file: %q\n}\n", certFile, keyFile)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := fabrictest.StartProcess(t, nil, fabricBin, "gateway", "--listen", "127.0.0.1:0", "--embed-nats", conf, "--inspector")
	if url := gw.WaitOutput(embeddedNATSRE, 20*time.Second); !strings.HasPrefix(url, "tls://") {
		t.Fatalf("the node's URL %q: want tls://", url)
	}
	addr := gw.WaitOutput(listeningRE, 20*time.Second)
	// No worker: NATS answers no_responders, so the request was published.
	if code, msgs := call(t, "ws://"+addr+"/ws", "demo/echo", `1`); code != 1 || len(msgs) == 0 || !strings.Contains(string(msgs[0].Payload), "no_responders") {
		t.Fatalf("exit %d, events %s; want no_responders", code, eventTypes(msgs))
	}
	gw.Signal(syscall.SIGTERM)
	if code := gw.Wait(20 * time.Second); code != 0 {
		t.Fatalf("gateway exit %d\n%s", code, gw.Stderr())
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key into dir.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fabric test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestGatewayEmbedNATSFlags: the NATS to connect to and the NATS to run
// are exclusive, and a configuration that cannot be read is an error
// before anything listens.
func TestGatewayEmbedNATSFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats", "nats://127.0.0.1:1", "--embed-nats", "x.conf"}, "--nats and --embed-nats"},
		{[]string{"--embed-nats", filepath.Join(t.TempDir(), "missing.conf")}, "missing.conf"},
	} {
		p := fabrictest.StartProcess(t, nil, fabricBin, append([]string{"gateway", "--listen", "127.0.0.1:0"}, tc.args...)...)
		if code := p.Wait(20 * time.Second); code == 0 || !strings.Contains(p.Stderr(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error with %q", tc.args, code, p.Stderr(), tc.want)
		}
	}
}
