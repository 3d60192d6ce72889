package codegen_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/seed82ac63c1/fabric/codegen"
	"github.com/seed82ac63c1/fabric/protocol"
)

// asyncDoc generates a document and decodes it.
func asyncDoc(t *testing.T, prefix string, routes ...protocol.RouteInfo) map[string]any {
	t.Helper()
	out, err := codegen.AsyncAPI("Test", prefix, routes)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return doc
}

// at walks a decoded document by keys (and indexes of arrays).
func at(t *testing.T, v any, path ...string) any {
	t.Helper()
	for i, k := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				t.Fatalf("no %q at %s", k, strings.Join(path[:i], "."))
			}
		case []any:
			n, err := strconv.Atoi(k)
			if err != nil || n < 0 || n >= len(x) {
				t.Fatalf("no index %q at %s", k, strings.Join(path[:i], "."))
			}
			v = x[n]
		default:
			t.Fatalf("%s is a %T, not an object", strings.Join(path[:i], "."), v)
		}
	}
	return v
}

// jsonEq compares a decoded value with JSON text.
func jsonEq(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("%s:\n got %s\nwant %s", what, g, want)
	}
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

type Recursive struct {
	Name     string       `json:"name"`
	Children []*Recursive `json:"children,omitempty"`
}

type WithArray struct {
	Pair  [2]float32 `json:"pair"`
	Small uint8      `json:"small"`
	Again *Recursive `json:"again,omitempty"`
}

func TestAsyncAPISchemas(t *testing.T) {
	route := protocol.NewRoute[Everything, Address]("test/all").WithEvents(protocol.Event[Ev]("progress"))
	doc := asyncDoc(t, "", route.Info(),
		protocol.NewRoute[Recursive, WithArray]("test/tree").Info(),
		protocol.NewRoute[struct{}, Nothing]("e/x").Info())
	schemas := at(t, doc, "components", "schemas")

	jsonEq(t, "Everything", at(t, schemas, "Everything"), `{
		"title": "Everything",
		"type": "object",
		"properties": {
			"id": {"type": "string"},
			"name": {"type": "string"},
			"nick": {"type": "string"},
			"age": {"type": "integer"},
			"score": {"type": "number"},
			"ok": {"type": "boolean"},
			"tags": {"type": "array", "items": {"type": "string"}},
			"blob": {"type": "string", "contentEncoding": "base64"},
			"raw": {},
			"any": {},
			"when": {"type": "string", "format": "date-time"},
			"home": {"oneOf": [{"$ref": "#/components/schemas/Address"}, {"type": "null"}]},
			"past": {"type": "array", "items": {"$ref": "#/components/schemas/Address"}},
			"meta": {"type": "object", "additionalProperties": {"type": "integer"}},
			"inline": {"type": "object", "properties": {"X": {"type": "integer"}}, "required": ["X"]},
			"NoTag": {"type": "string"},
			"x-dashed": {"type": "string"},
			"nested": {"type": "object", "additionalProperties": {"type": "array", "items":
				{"oneOf": [{"$ref": "#/components/schemas/Address"}, {"type": "null"}]}}},
			"matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
			"optionals": {"type": "array", "items": {"type": ["string", "null"]}},
			"dur": {"type": "integer"},
			"counts": {"type": "object", "propertyNames": {"pattern": "^-?[0-9]+$"}, "additionalProperties": {"type": "string"}},
			"deep": {"type": "object", "additionalProperties": {}}
		},
		"required": ["id", "name", "age", "score", "ok", "tags", "blob", "raw", "any", "when", "home", "past",
			"meta", "inline", "NoTag", "x-dashed", "nested", "matrix", "dur", "counts", "deep"]
	}`)
	jsonEq(t, "Address", at(t, schemas, "Address"),
		`{"title": "Address", "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}`)
	jsonEq(t, "Recursive", at(t, schemas, "Recursive"), `{"title": "Recursive", "type": "object", "required": ["name"],
		"properties": {"name": {"type": "string"}, "children": {"type": "array", "items":
			{"oneOf": [{"$ref": "#/components/schemas/Recursive"}, {"type": "null"}]}}}}`)
	jsonEq(t, "WithArray", at(t, schemas, "WithArray"), `{"title": "WithArray", "type": "object", "required": ["pair", "small"],
		"properties": {
			"pair": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
			"small": {"type": "integer", "minimum": 0},
			"again": {"oneOf": [{"$ref": "#/components/schemas/Recursive"}, {"type": "null"}]}}}`)
	jsonEq(t, "Nothing", at(t, schemas, "Nothing"), `{"title": "Nothing", "type": "object", "additionalProperties": false}`)
	jsonEq(t, "anonymous empty params", at(t, doc, "components", "messages", "eXRequest", "payload"),
		`{"type": "object", "additionalProperties": false}`)

	if got := keys(schemas); !slices.Equal(got, []string{"Address", "Ev", "Everything", "FabricError", "FabricEventHeaders",
		"FabricPushHeaders", "FabricRequestHeaders", "Nothing", "Recursive", "WithArray"}) {
		t.Errorf("schemas %v", got)
	}
	if s := at(t, schemas, "Everything").(map[string]any); strings.Contains(strings.Join(keys(s["properties"]), " "), "Skipped") ||
		strings.Contains(strings.Join(keys(s["properties"]), " "), "unexport") {
		t.Errorf("skipped fields written: %v", keys(s["properties"]))
	}
	jsonEq(t, "params", at(t, doc, "components", "messages", "testAllRequest", "payload"), `{"$ref": "#/components/schemas/Everything"}`)
	jsonEq(t, "progress", at(t, doc, "components", "messages", "testAllProgress", "payload"), `{"$ref": "#/components/schemas/Ev"}`)
	jsonEq(t, "response", at(t, doc, "components", "messages", "testAllResponse", "payload"), `{"$ref": "#/components/schemas/Address"}`)
}

func TestAsyncAPIPointers(t *testing.T) {
	type P struct {
		Int   *int             `json:"int"`
		PP    **string         `json:"pp"`
		Any   *any             `json:"any"`
		Slice *[]int           `json:"slice"`
		Anon  *struct{}        `json:"anon"`
		Raw   *json.RawMessage `json:"raw"`
	}
	doc := asyncDoc(t, "", protocol.NewRoute[P, P]("p/p").Info())
	jsonEq(t, "P", at(t, doc, "components", "schemas", "P", "properties"), `{
		"int": {"type": ["integer", "null"]},
		"pp": {"type": ["string", "null"]},
		"any": {},
		"slice": {"type": ["array", "null"], "items": {"type": "integer"}},
		"anon": {"type": ["object", "null"], "additionalProperties": false},
		"raw": {}
	}`)
}

func TestAsyncAPIDocument(t *testing.T) {
	count := protocol.NewRoute[CountP, CountR]("demo/count").WithEvents(protocol.Event[Ev]("progress"))
	echo := protocol.NewRoute[json.RawMessage, json.RawMessage]("x/echo-it")
	doc := asyncDoc(t, "pre.fix", count.Info(), echo.Info())

	if got := keys(doc); !slices.Equal(got, []string{"asyncapi", "channels", "components", "defaultContentType", "info", "operations"}) {
		t.Errorf("top-level keys %v", got)
	}
	if at(t, doc, "asyncapi") != "3.0.0" || at(t, doc, "defaultContentType") != "application/json" ||
		at(t, doc, "info", "title") != "Test" || at(t, doc, "info", "version") != "1.0.0" ||
		!strings.Contains(at(t, doc, "info", "description").(string), "worker") {
		t.Errorf("header: %v %v %v", doc["asyncapi"], doc["defaultContentType"], doc["info"])
	}

	wantChannels := map[string]string{
		"demoCountRequest":  "pre.fix.req.demo.count",
		"demoCountProgress": "pre.fix.evt.{sessionId}.{id}.demo.count.progress",
		"demoCountResponse": "pre.fix.evt.{sessionId}.{id}.demo.count.response",
		"demoCountError":    "pre.fix.evt.{sessionId}.{id}.demo.count.error",
		"demoCountFinish":   "pre.fix.evt.{sessionId}.{id}.demo.count.finish",
		"xEcho-itRequest":   "pre.fix.req.x.echo-it",
		"xEcho-itResponse":  "pre.fix.evt.{sessionId}.{id}.x.echo-it.response",
		"xEcho-itError":     "pre.fix.evt.{sessionId}.{id}.x.echo-it.error",
		"xEcho-itFinish":    "pre.fix.evt.{sessionId}.{id}.x.echo-it.finish",
		"cancel":            "pre.fix.cancel.{sessionId}.{id}",
		"pushSession":       "pre.fix.push.session.{sessionId}",
		"pushUser":          "pre.fix.push.user.{user}",
		"pushAll":           "pre.fix.push.all",
	}
	channels := at(t, doc, "channels").(map[string]any)
	if len(channels) != len(wantChannels) {
		t.Errorf("channels %v", keys(channels))
	}
	for id, address := range wantChannels {
		if got := at(t, channels, id, "address"); got != address {
			t.Errorf("channel %s: address %v, want %s", id, got, address)
		}
		// Every {parameter} of the address is declared, and no other.
		var params []string
		for _, part := range strings.Split(address, "{")[1:] {
			params = append(params, part[:strings.IndexByte(part, '}')])
		}
		slices.Sort(params)
		if got := keys(channels[id].(map[string]any)["parameters"]); !slices.Equal(got, params) {
			t.Errorf("channel %s: parameters %v, want %v", id, got, params)
		}
	}

	// Operations: the worker's view, one per channel, each naming its
	// channel and a message of that channel.
	wantOps := map[string]string{
		"receiveDemoCountRequest": "demoCountRequest",
		"sendDemoCountProgress":   "demoCountProgress",
		"sendDemoCountResponse":   "demoCountResponse",
		"sendDemoCountError":      "demoCountError",
		"sendDemoCountFinish":     "demoCountFinish",
		"receiveXEcho-itRequest":  "xEcho-itRequest",
		"sendXEcho-itResponse":    "xEcho-itResponse",
		"sendXEcho-itError":       "xEcho-itError",
		"sendXEcho-itFinish":      "xEcho-itFinish",
		"receiveCancel":           "cancel",
		"sendPushSession":         "pushSession",
		"sendPushUser":            "pushUser",
		"sendPushAll":             "pushAll",
	}
	ops := at(t, doc, "operations").(map[string]any)
	if len(ops) != len(wantOps) {
		t.Errorf("operations %v", keys(ops))
	}
	messages := at(t, doc, "components", "messages").(map[string]any)
	for id, ch := range wantOps {
		action, _, _ := strings.Cut(id, strings.ToUpper(ch[:1]))
		if got := at(t, ops, id, "action"); got != action {
			t.Errorf("%s: action %v", id, got)
		}
		chRef := "#/channels/" + ch
		if got := at(t, ops, id, "channel", "$ref"); got != chRef {
			t.Errorf("%s: channel %v", id, got)
		}
		msgRef := at(t, ops, id, "messages", "0", "$ref").(string)
		msgKey, ok := strings.CutPrefix(msgRef, chRef+"/messages/")
		if !ok {
			t.Errorf("%s: message %s is not one of its channel's", id, msgRef)
			continue
		}
		if got := at(t, channels, ch, "messages", msgKey, "$ref"); got != "#/components/messages/"+msgKey {
			t.Errorf("%s: channel message %v", id, got)
		}
		if _, ok := messages[msgKey]; !ok {
			t.Errorf("%s: no component message %s", id, msgKey)
		}
	}
	jsonEq(t, "request bindings", at(t, ops, "receiveDemoCountRequest", "bindings"), `{"nats": {"queue": "pre.fix", "bindingVersion": "0.1.0"}}`)

	if got := keys(messages); !slices.Equal(got, []string{"cancel", "demoCountProgress", "demoCountRequest", "demoCountResponse",
		"error", "finish", "push", "xEcho-itRequest", "xEcho-itResponse"}) {
		t.Errorf("messages %v", got)
	}
	for msg, headers := range map[string]string{
		"demoCountRequest": "FabricRequestHeaders", "demoCountProgress": "FabricEventHeaders",
		"error": "FabricEventHeaders", "finish": "FabricEventHeaders", "push": "FabricPushHeaders",
	} {
		if got := at(t, messages, msg, "headers", "$ref"); got != "#/components/schemas/"+headers {
			t.Errorf("%s: headers %v", msg, got)
		}
	}
	if at(t, messages, "demoCountProgress", "name") != "demo/count:progress" || at(t, messages, "demoCountRequest", "name") != "demo/count" {
		t.Errorf("message names: %v %v", messages["demoCountProgress"], messages["demoCountRequest"])
	}
	for _, m := range []string{"finish", "cancel"} {
		if _, ok := messages[m].(map[string]any)["payload"]; ok {
			t.Errorf("%s has a payload", m)
		}
	}
	if _, ok := messages["cancel"].(map[string]any)["headers"]; ok {
		t.Errorf("cancel has headers")
	}
	jsonEq(t, "error payload", at(t, messages, "error", "payload"), `{"$ref": "#/components/schemas/FabricError"}`)
	errSchema := at(t, doc, "components", "schemas", "FabricError")
	jsonEq(t, "error required", at(t, errSchema, "required"), `["code", "message"]`)
	if got := keys(at(t, errSchema, "properties")); !slices.Equal(got, []string{"code", "details", "message"}) {
		t.Errorf("error properties %v", got)
	}

	for schema, want := range map[string]string{
		"FabricRequestHeaders": `{"props": ["Fabric-Claims", "Fabric-Id", "Fabric-Session", "Fabric-User", "traceparent", "tracestate"], "required": ["Fabric-Id", "Fabric-Session"]}`,
		"FabricEventHeaders":   `{"props": ["Fabric-Id", "Fabric-Seq", "traceparent"], "required": ["Fabric-Id", "Fabric-Seq"]}`,
		"FabricPushHeaders":    `{"props": ["Fabric-Type"], "required": ["Fabric-Type"]}`,
	} {
		s := at(t, doc, "components", "schemas", schema)
		jsonEq(t, schema, map[string]any{"props": toAny(keys(at(t, s, "properties"))), "required": at(t, s, "required")}, want)
	}
	if got := keys(at(t, doc, "components", "parameters")); !slices.Equal(got, []string{"id", "sessionId", "user"}) {
		t.Errorf("parameters %v", got)
	}
}

func toAny(s []string) []any {
	var a []any
	for _, x := range s {
		a = append(a, x)
	}
	return a
}

type (
	CountP struct {
		N int `json:"n"`
	}
	CountR struct {
		N int `json:"n"`
	}
)

// TestAsyncAPIDeterministic: the same routes, in any order, give the same
// bytes.
func TestAsyncAPIDeterministic(t *testing.T) {
	routes := []protocol.RouteInfo{
		protocol.NewRoute[Everything, Address]("test/all").WithEvents(protocol.Event[Ev]("progress"), protocol.Event[Nothing]("step")).Info(),
		protocol.NewRoute[Recursive, WithArray]("test/tree").Info(),
		protocol.NewRoute[json.RawMessage, json.RawMessage]("a/echo").Info(),
	}
	first, err := codegen.AsyncAPI("T", "fabric", routes)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		slices.Reverse(routes)
		again, err := codegen.AsyncAPI("T", "fabric", routes)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("two runs differ")
		}
	}
	if !bytes.HasSuffix(first, []byte("}\n")) || bytes.Contains(first, []byte(`\u003c`)) {
		t.Errorf("output should end with a newline and not escape <, >, &")
	}
}

func TestAsyncAPIErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		prefix string
		routes []protocol.RouteInfo
		want   error
	}{
		"unsupported type":    {"", []protocol.RouteInfo{protocol.NewRoute[Bad, Bad]("x/bad").Info()}, codegen.ErrUnsupported},
		"unsupported map key": {"", []protocol.RouteInfo{protocol.NewRoute[map[bool]int, Nothing]("x/bad").Info()}, codegen.ErrUnsupported},
		"two routes, one id": {"", []protocol.RouteInfo{
			protocol.NewRoute[Nothing, Nothing]("demo/count").Info(),
			protocol.NewRoute[Nothing, Nothing]("demoCount").Info(),
		}, codegen.ErrConflict},
		"event and route, one id": {"", []protocol.RouteInfo{
			protocol.NewRoute[Nothing, Nothing]("push").WithEvents(protocol.Event[Nothing]("all")).Info(),
		}, codegen.ErrConflict},
		"implied suffix": {"", []protocol.RouteInfo{
			protocol.NewRoute[Nothing, Nothing]("x/y").WithEvents(protocol.Event[Nothing]("finish")).Info(),
		}, codegen.ErrConflict},
		"duplicate suffix": {"", []protocol.RouteInfo{
			protocol.NewRoute[Nothing, Nothing]("x/y").WithEvents(protocol.Event[Nothing]("a"), protocol.Event[Ev]("a")).Info(),
		}, codegen.ErrConflict},
		"built-in schema name": {"", []protocol.RouteInfo{protocol.NewRoute[FabricError, Nothing]("x/y").Info()}, codegen.ErrConflict},
		"bad typeName":         {"", []protocol.RouteInfo{protocol.NewRoute[Nothing, Nothing]("x.y").Info()}, nil},
		"reserved typeName":    {"", []protocol.RouteInfo{protocol.NewRoute[Nothing, Nothing]("sys/x").Info()}, nil},
		"bad suffix": {"", []protocol.RouteInfo{
			protocol.NewRoute[Nothing, Nothing]("x/y").WithEvents(protocol.Event[Nothing]("a.b")).Info(),
		}, nil},
		"bad prefix": {"a..b", nil, nil},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := codegen.AsyncAPI("X", tc.prefix, tc.routes)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("got %v, want %v\n%s", err, tc.want, out)
			}
		})
	}
}

// FabricError has the name of a built-in schema.
type FabricError struct {
	X int `json:"x"`
}
