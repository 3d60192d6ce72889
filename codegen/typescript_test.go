package codegen_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/codegen"
	"github.com/seed82ac63c1/fabric/protocol"
)

type Base struct {
	ID string `json:"id"`
}

type Address struct {
	City string `json:"city"`
}

type Everything struct {
	Base                          // embedded: flattened
	Name    string                `json:"name"`
	Nick    string                `json:"nick,omitempty"`
	Age     int                   `json:"age"`
	Score   float64               `json:"score"`
	OK      bool                  `json:"ok"`
	Tags    []string              `json:"tags"`
	Blob    []byte                `json:"blob"`
	Raw     json.RawMessage       `json:"raw"`
	Any     any                   `json:"any"`
	When    time.Time             `json:"when"`
	Home    *Address              `json:"home"`
	Past    []Address             `json:"past"`
	Meta    map[string]int        `json:"meta"`
	Inline  struct{ X int }       `json:"inline"`
	Skipped string                `json:"-"`
	NoTag   string                // a field without a tag keeps its Go name
	Dashed  string                `json:"x-dashed"`
	Nested  map[string][]*Address `json:"nested"`
	//lint:ignore U1000 an unexported field is never encoded
	unexport  int
	Matrix    [][]int                `json:"matrix"`
	Optionals []*string              `json:"optionals,omitempty"`
	Dur       time.Duration          `json:"dur"`
	Counts    map[int]string         `json:"counts"`
	Deep      map[string]interface{} `json:"deep"`
}

type Nothing struct{}

type Ev struct {
	Step int `json:"step"`
}

func TestTypeScript(t *testing.T) {
	route := protocol.NewRoute[Everything, Address]("test/all").WithEvents(protocol.Event[Ev]("progress"))
	echo := protocol.NewRoute[json.RawMessage, json.RawMessage]("test/echo")
	out, err := codegen.TypeScript("Test", []protocol.RouteInfo{route.Info(), echo.Info()})
	if err != nil {
		t.Fatal(err)
	}
	src := string(out)
	for _, want := range []string{
		"export interface Everything {\n  id: string;\n  name: string;\n  nick?: string;\n  age: number;\n  score: number;\n  ok: boolean;\n  tags: string[];\n  blob: string;\n  raw: unknown;\n  any: unknown;\n  when: string;\n  home: Address | null;\n  past: Address[];\n  meta: Record<string, number>;\n  inline: {\n  X: number;\n};\n  NoTag: string;\n  \"x-dashed\": string;\n  nested: Record<string, (Address | null)[]>;\n  matrix: number[][];\n  optionals?: (string | null)[];\n  dur: number;\n  counts: Record<string, string>;\n  deep: Record<string, unknown>;\n}",
		"export interface Address {\n  city: string;\n}",
		"export interface Ev {\n  step: number;\n}",
		`"test/all": { params: Everything; events: { progress: Ev; response: Address } };`,
		`"test/echo": { params: unknown; events: { response: unknown } };`,
		`export const testRouteNames = ["test/all", "test/echo"] as const;`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("missing:\n%s\n\nin:\n%s", want, src)
		}
	}
	if strings.Contains(src, "Skipped") || strings.Contains(src, "unexport") {
		t.Errorf("skipped fields written:\n%s", src)
	}
	empty, err := codegen.TypeScript("E", []protocol.RouteInfo{protocol.NewRoute[struct{}, Nothing]("e/x").Info()})
	if err != nil || !strings.Contains(string(empty), "export type Nothing = Record<string, never>;") ||
		!strings.Contains(string(empty), `"e/x": { params: {}; events: { response: Nothing } };`) {
		t.Errorf("empty structs: %v\n%s", err, empty)
	}
	if strings.Count(src, "export interface Address ") != 1 {
		t.Errorf("Address declared more than once")
	}
}

type Bad struct {
	C chan int `json:"c"`
}

func TestTypeScriptUnsupported(t *testing.T) {
	_, err := codegen.TypeScript("X", []protocol.RouteInfo{protocol.NewRoute[Bad, Bad]("x/bad").Info()})
	if !errors.Is(err, codegen.ErrUnsupported) {
		t.Fatalf("got %v", err)
	}
}

// A Go type named like a TypeScript global (protocol.Error) must not hide
// it in the generated module: it takes its package's name as a prefix.
func TestTypeScriptRenamesGlobals(t *testing.T) {
	type Failed struct {
		Error *protocol.Error `json:"error"`
	}
	src, err := codegen.TypeScript("X", []protocol.RouteInfo{protocol.NewRoute[Nothing, Failed]("x/failed").Info()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "export interface ProtocolError {") || !strings.Contains(string(src), "error: ProtocolError | null;") {
		t.Fatalf("protocol.Error not renamed:\n%s", src)
	}
	if strings.Contains(string(src), "interface Error ") {
		t.Fatalf("the module declares Error:\n%s", src)
	}
}
