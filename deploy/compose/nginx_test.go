package compose_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/web"
)

const nginxConfigFile = "deploy/nginx/fabric.conf"

// directive is one nginx directive: its name, its arguments (unquoted),
// and its block if it has one.
type directive struct {
	name  string
	args  []string
	block []*directive
}

// parseNginx parses nginx's configuration syntax: words and quoted strings,
// ; ending a directive, { } around a block, # comments.
func parseNginx(t *testing.T, src string) []*directive {
	t.Helper()
	var tokens []string
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			tokens = append(tokens, string(c))
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(src[i+1:], c)
			if j < 0 {
				t.Fatalf("nginx: unterminated string at %d", i)
			}
			tokens = append(tokens, "\x00"+src[i+1:i+1+j]) // quoted: never ; { }
			i += j + 2
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n;{}#\"'", rune(src[j])) {
				j++
			}
			tokens = append(tokens, src[i:j])
			i = j
		}
	}
	pos := 0
	var parse func(depth int) []*directive
	parse = func(depth int) []*directive {
		var ds []*directive
		var cur *directive
		for pos < len(tokens) {
			tok := tokens[pos]
			pos++
			switch tok {
			case ";":
				if cur == nil {
					t.Fatal("nginx: empty directive")
				}
				ds, cur = append(ds, cur), nil
			case "{":
				if cur == nil {
					t.Fatal("nginx: block without a directive")
				}
				cur.block = parse(depth + 1)
				ds, cur = append(ds, cur), nil
			case "}":
				if depth == 0 || cur != nil {
					t.Fatal("nginx: unbalanced }")
				}
				return ds
			default:
				tok = strings.TrimPrefix(tok, "\x00")
				if cur == nil {
					cur = &directive{name: tok}
				} else {
					cur.args = append(cur.args, tok)
				}
			}
		}
		if depth != 0 || cur != nil {
			t.Fatal("nginx: unexpected end of file")
		}
		return ds
	}
	return parse(0)
}

// find returns the directives of ds with the given name.
func find(ds []*directive, name string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name {
			out = append(out, d)
		}
	}
	return out
}

// one returns the single directive of ds with the given name, or nil.
func one(ds []*directive, name string) *directive {
	if found := find(ds, name); len(found) == 1 {
		return found[0]
	}
	return nil
}

// headers returns the proxy_set_header (or add_header) values of a block.
func headers(ds []*directive, name string) map[string]string {
	h := map[string]string{}
	for _, d := range find(ds, name) {
		if len(d.args) >= 2 {
			h[d.args[0]] = d.args[1]
		}
	}
	return h
}

// nginxDuration parses an nginx time: 75, 75s, 1m, 1h, 500ms.
func nginxDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	if _, err := strconv.Atoi(s); err == nil {
		s += "s"
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("nginx time %q: %v", s, err)
	}
	return d
}

// nginxConfig is the parsed deploy/nginx/fabric.conf: what goes into the
// http block, and its one server.
type nginxConfig struct {
	top       []*directive
	server    []*directive
	locations map[string]*directive // by "= /ws", "/", "~ ^/x$"
}

func loadNginx(t *testing.T) nginxConfig {
	t.Helper()
	b, err := os.ReadFile(rootPath(t, nginxConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	c := nginxConfig{top: parseNginx(t, string(b)), locations: map[string]*directive{}}
	srv := one(c.top, "server")
	if srv == nil {
		t.Fatalf("%s: want one server block", nginxConfigFile)
	}
	c.server = srv.block
	for _, l := range find(c.server, "location") {
		key := strings.Join(l.args, " ")
		if _, dup := c.locations[key]; dup {
			t.Fatalf("%s: location %s twice", nginxConfigFile, key)
		}
		c.locations[key] = l
	}
	return c
}

// TestLoadBalancer checks the lb service and deploy/nginx/fabric.conf:
// round robin over every gateway, found again in Docker's DNS, and a /ws
// that passes the WebSocket upgrade on and keeps connections open.
func TestLoadBalancer(t *testing.T) {
	p := loadProject(t)
	lb := service(t, p, "lb")
	c := loadNginx(t)

	// nginx 1.27.3 or later, for `resolve` in an upstream.
	tag, ok := strings.CutPrefix(lb.Image, "nginx:")
	if !ok || !strings.HasSuffix(tag, "-alpine") {
		t.Fatalf("lb image %q, want nginx:<version>-alpine", lb.Image)
	}
	if v := strings.TrimSuffix(tag, "-alpine"); compareVersions(v, "1.27.3") < 0 && v != "1.27" {
		t.Errorf("lb image %s: `resolve` in an upstream needs nginx 1.27.3 or later", lb.Image)
	}
	// In place of the image's default server, which would otherwise answer
	// on the same port with nginx's welcome page.
	if target := bindOf(t, lb, nginxConfigFile); target != "/etc/nginx/conf.d/default.conf" {
		t.Errorf("%s is mounted at %s, want /etc/nginx/conf.d/default.conf", nginxConfigFile, target)
	}

	// The published port is the server's listen port.
	listen := one(c.server, "listen")
	if listen == nil || len(listen.args) != 1 {
		t.Fatalf("%s: want one `listen PORT`", nginxConfigFile)
	}
	published := false
	for _, port := range lb.Ports {
		if port.Published == "8080" {
			published = strconv.Itoa(int(port.Target)) == listen.args[0]
		}
	}
	if !published {
		t.Errorf("lb: ports %+v, want 8080 on the host to nginx's listen %s", lb.Ports, listen.args[0])
	}

	// One upstream: every gateway at its listen port, round robin.
	ups := find(c.top, "upstream")
	if len(ups) != 1 || len(ups[0].args) != 1 {
		t.Fatalf("%s: want one upstream", nginxConfigFile)
	}
	up := ups[0]
	var servers, want []string
	for _, s := range find(up.block, "server") {
		servers = append(servers, s.args[0])
		if !slices.Contains(s.args, "resolve") {
			t.Errorf("upstream server %s without resolve: a recreated gateway container would not be found", s.args[0])
		}
	}
	for _, name := range gatewayServices {
		want = append(want, name+":"+listenPort(t, service(t, p, name)))
	}
	slices.Sort(servers)
	if !slices.Equal(servers, want) {
		t.Errorf("upstream servers %v, want every gateway %v", servers, want)
	}
	for _, d := range up.block {
		if slices.Contains([]string{"ip_hash", "hash", "sticky", "least_conn", "random"}, d.name) {
			t.Errorf("upstream %s: %s; want plain round robin: any gateway resumes any session", up.args[0], d.name)
		}
	}
	if one(up.block, "zone") == nil {
		t.Errorf("upstream %s: no zone, which resolve needs", up.args[0])
	}
	if r := one(c.top, "resolver"); r == nil || r.args[0] != "127.0.0.11" {
		t.Errorf("want `resolver 127.0.0.11` (Docker's DNS) beside the upstream")
	}

	// /ws: the upgrade passed on, long reads, failover to the other gateway.
	ws := c.locations["= /ws"]
	if ws == nil {
		t.Fatalf("%s: no `location = /ws`", nginxConfigFile)
	}
	if pp := one(ws.block, "proxy_pass"); pp == nil || pp.args[0] != "http://"+up.args[0] {
		t.Errorf("/ws: proxy_pass %v, want http://%s", pp, up.args[0])
	}
	if v := one(ws.block, "proxy_http_version"); v == nil || v.args[0] != "1.1" {
		t.Errorf("/ws: want proxy_http_version 1.1, which WebSockets need")
	}
	h := headers(ws.block, "proxy_set_header")
	if h["Upgrade"] != "$http_upgrade" {
		t.Errorf("/ws: proxy_set_header Upgrade %q, want $http_upgrade", h["Upgrade"])
	}
	if conn := h["Connection"]; conn != "upgrade" && upgradeMap(c.top, conn) != "upgrade" {
		t.Errorf("/ws: proxy_set_header Connection %q: an upgrade request must go on with Connection: upgrade", conn)
	}
	if h["Host"] != "$http_host" && h["Host"] != "$host:$server_port" {
		t.Errorf("/ws: proxy_set_header Host %q: the gateway checks the page's Origin against the Host with its port", h["Host"])
	}
	// The gateway pings every PingInterval; a read timeout shorter than two
	// would cut quiet sessions.
	for _, name := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		if d := one(ws.block, name); d == nil || nginxDuration(t, d.args[0]) < 2*gateway.DefaultPingInterval {
			t.Errorf("/ws: %s %v, want at least %s", name, d, 2*gateway.DefaultPingInterval)
		}
	}
	if nu := one(ws.block, "proxy_next_upstream"); nu == nil || !slices.Contains(nu.args, "error") || !slices.Contains(nu.args, "http_503") {
		t.Errorf("/ws: proxy_next_upstream %v, want error and http_503 (a draining gateway answers 503)", nu)
	}

	// The healthcheck asks nginx itself.
	hc := lb.HealthCheck
	if hc == nil || len(hc.Test) == 0 {
		t.Fatal("lb: no healthcheck")
	}
	probe := hc.Test[len(hc.Test)-1]
	_, p2, _ := strings.Cut(strings.TrimPrefix(probe, "http://"), "/")
	l := c.locations["= /"+p2]
	if ret := one(l.blockOrNil(), "return"); ret == nil || ret.args[0] != "200" {
		t.Errorf("lb: healthcheck %v, want a location of nginx's own that returns 200", hc.Test)
	}
}

func (d *directive) blockOrNil() []*directive {
	if d == nil {
		return nil
	}
	return d.block
}

// upgradeMap returns what `map $http_upgrade $v {…}` gives $v for an
// upgrade request ("" if no such map).
func upgradeMap(top []*directive, v string) string {
	for _, m := range find(top, "map") {
		if len(m.args) == 2 && m.args[0] == "$http_upgrade" && m.args[1] == v {
			for _, e := range m.block {
				if e.name == "default" && len(e.args) == 1 {
					return e.args[0]
				}
			}
		}
	}
	return ""
}

// TestLoadBalancerServesThePage checks that nginx serves the demo page as
// `fabric dev` does: the same paths, from web/dist, with the same headers,
// and nothing else but /ws and the health endpoints (not a gateway's
// /metrics).
func TestLoadBalancerServesThePage(t *testing.T) {
	lb := service(t, loadProject(t), "lb")
	c := loadNginx(t)
	rootDir := one(c.server, "root")
	if rootDir == nil {
		t.Fatal("no root in the server block")
	}
	if target := bindOf(t, lb, "web/dist"); target != rootDir.args[0] {
		t.Errorf("web/dist is mounted at %s, nginx's root is %s", target, rootDir.args[0])
	}
	files, err := os.ReadDir(rootPath(t, "web/dist"))
	if err != nil {
		t.Fatal(err)
	}
	fabric := web.Handler()
	for _, f := range files {
		urlPath := "/" + f.Name()
		if f.Name() == "index.html" {
			urlPath = "/"
		}
		rec := httptest.NewRecorder()
		fabric.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, urlPath, nil))
		l := c.locations["= "+urlPath]
		switch {
		case rec.Code == http.StatusOK && l == nil:
			t.Errorf("fabric dev serves %s, nginx does not", urlPath)
			continue
		case rec.Code != http.StatusOK && l != nil:
			t.Errorf("nginx serves %s, fabric dev does not (%d)", urlPath, rec.Code)
			continue
		case l == nil:
			continue
		}
		// The file nginx sends is the one fabric dev sends.
		served := urlPath
		if tf := one(l.block, "try_files"); tf != nil {
			served = tf.args[0]
		}
		if served != "/"+f.Name() {
			t.Errorf("nginx serves %s at %s, want %s", served, urlPath, f.Name())
		}
		got := headers(l.block, "add_header")
		for _, name := range []string{"Cache-Control", "X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy"} {
			if want := rec.Header().Get(name); got[name] != want {
				t.Errorf("%s: nginx sends %s %q, fabric dev %q", urlPath, name, got[name], want)
			}
		}
	}
	// Everything else is 404.
	catchAll := c.locations["/"]
	if ret := one(catchAll.blockOrNil(), "return"); ret == nil || ret.args[0] != "404" {
		t.Errorf("want `location / { return 404; }`: no other path reaches a gateway")
	}
	for key, l := range c.locations {
		if one(l.block, "proxy_pass") != nil && key != "= /ws" && !strings.Contains(key, "healthz") && !strings.Contains(key, "readyz") {
			t.Errorf("location %s proxies to the gateways", key)
		}
	}
}
