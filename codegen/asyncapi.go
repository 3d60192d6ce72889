package codegen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// ErrConflict reports two routes, events or types that would get one
// identifier in a generated document, such as the routes "demo/count" and
// "demoCount" (both "demoCount" in AsyncAPI), or an event suffix the
// protocol already implies ("error", "finish").
var ErrConflict = errors.New("codegen: conflicting names")

// AsyncAPIVersion is the version of the AsyncAPI specification that
// [AsyncAPI] writes.
const AsyncAPIVersion = "3.0.0"

// AsyncAPI renders the NATS contract of routes (docs/nats.md) as an AsyncAPI
// 3.0.0 document in JSON, with the subjects under prefix ("" means
// [subjects.DefaultPrefix]) and title as the document's title.
//
// The document is written from a worker's point of view: a worker receives
// requests and cancels, and sends events and pushes. Each route T gets a
// request channel "<prefix>.req.<T>" and one event channel
// "<prefix>.evt.{sessionId}.{id}.<T>.<suffix>" per declared suffix, plus
// "error" and "finish"; the cancel and push subjects are channels of their
// own. Identifiers are camelCase from the typeName: "demo/count" gives the
// channels demoCountRequest, demoCountProgress, …, the messages of the same
// names and the operations receiveDemoCountRequest, sendDemoCountProgress, ….
// Payload schemas follow the Go types' JSON encoding by the same rules as
// [TypeScript]; named struct types are declared once under
// components/schemas.
//
// Routes are written sorted by typeName and every object's keys sorted, so
// the output is stable: the same routes give the same bytes.
func AsyncAPI(title, prefix string, routes []protocol.RouteInfo) ([]byte, error) {
	space, err := subjects.NewSpace(prefix)
	if err != nil {
		return nil, err
	}
	routes = slices.Clone(routes)
	slices.SortFunc(routes, func(a, b protocol.RouteInfo) int { return strings.Compare(a.Type, b.Type) })

	g := &schemaGen{schemas: obj{}, names: map[string]reflect.Type{}}
	for name, s := range builtinSchemas() {
		g.schemas[name] = s
		g.names[name] = nil
	}
	d := &asyncDoc{
		space:      space,
		channels:   obj{},
		messages:   obj{},
		operations: obj{},
		owners:     map[string]string{},
	}
	for _, r := range routes {
		if err := d.route(g, r); err != nil {
			return nil, err
		}
	}
	if err := d.fabricChannels(); err != nil {
		return nil, err
	}

	doc := obj{
		"asyncapi": AsyncAPIVersion,
		"info": obj{
			"title":       title,
			"version":     "1.0.0",
			"description": description(space, routes),
		},
		"defaultContentType": "application/json",
		"channels":           d.channels,
		"operations":         d.operations,
		"components": obj{
			"schemas":        g.schemas,
			"messages":       d.messages,
			"parameters":     parameters(),
			"correlationIds": obj{"messageId": correlationID},
		},
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// obj is a JSON object; encoding/json writes its keys sorted.
type obj = map[string]any

func ref(section, name string) obj { return obj{"$ref": "#/" + section + "/" + name} }

// asyncDoc collects a document's channels, messages and operations.
type asyncDoc struct {
	space                          subjects.Space
	channels, messages, operations obj
	owners                         map[string]string // channel id → what made it, for conflicts
}

// channel adds a channel with one message, its component message, and the
// operation on it. Operation ids are the action and the channel id, so
// channel ids are the only ones that can conflict.
func (d *asyncDoc) channel(owner, id string, ch obj, msgKey string, msg obj, action string, op obj) error {
	if prev, ok := d.owners[id]; ok {
		return fmt.Errorf("%w: %s and %s both give the AsyncAPI channel id %q", ErrConflict, prev, owner, id)
	}
	d.owners[id] = owner
	ch["messages"] = obj{msgKey: ref("components/messages", msgKey)}
	d.channels[id] = ch
	if msg != nil {
		d.messages[msgKey] = msg
	}
	op["action"] = action
	op["channel"] = ref("channels", id)
	op["messages"] = []any{ref("channels/"+id+"/messages", msgKey)}
	d.operations[action+upperFirst(id)] = op
	return nil
}

// evtParams are the parameters of an event channel's address.
var evtParams = obj{"sessionId": ref("components/parameters", "sessionId"), "id": ref("components/parameters", "id")}

// route adds a route's request channel and its event channels.
func (d *asyncDoc) route(g *schemaGen, r protocol.RouteInfo) error {
	if err := subjects.ValidateRoute(r.Type); err != nil {
		return err
	}
	id := routeID(r.Type)
	params, err := g.schema(r.Params)
	if err != nil {
		return fmt.Errorf("%s params: %w", r.Type, err)
	}
	tag := []any{obj{"name": r.Type}}
	err = d.channel(r.Type, id+"Request",
		obj{
			"address":     d.space.Request(r.Type),
			"title":       r.Type + " requests",
			"description": fmt.Sprintf("Requests for the route `%s`. Workers serving it subscribe in the queue group `%s`, so that each request runs once.", r.Type, d.space.QueueGroup()),
		},
		id+"Request",
		obj{
			"name":          r.Type,
			"title":         r.Type + " request",
			"summary":       fmt.Sprintf("A %s request: its params, or `null` when the client sent none.", r.Type),
			"headers":       ref("components/schemas", "FabricRequestHeaders"),
			"payload":       params,
			"correlationId": ref("components/correlationIds", "messageId"),
		},
		"receive",
		obj{
			"title":       "Serve " + r.Type,
			"summary":     fmt.Sprintf("Receive %s requests, in the queue group `%s`.", r.Type, d.space.QueueGroup()),
			"description": fmt.Sprintf("The request's NATS reply subject is R = `%s`. Answer with events published to `R.%s.<suffix>`, never to R itself, and always end with `finish`.", d.space.Reply("{sessionId}", "{id}"), subjects.TypeTokens(r.Type)),
			"bindings":    obj{"nats": obj{"queue": d.space.QueueGroup(), "bindingVersion": "0.1.0"}},
			"tags":        tag,
		})
	if err != nil {
		return err
	}

	reply := d.space.Reply("{sessionId}", "{id}")
	event := func(suffix string, msgKey string, msg obj, summary string) error {
		eventType := subjects.EventType(r.Type, suffix)
		return d.channel(eventType, id+upperFirst(suffix),
			obj{
				"address":    subjects.Event(reply, r.Type, suffix),
				"title":      eventType + " events",
				"parameters": evtParams,
			},
			msgKey, msg,
			"send",
			obj{
				"title":   "Send " + eventType,
				"summary": summary,
				"tags":    tag,
			})
	}
	for i, e := range r.Events {
		if err := subjects.ValidateSuffix(e.Suffix); err != nil {
			return fmt.Errorf("%s:%s: %w", r.Type, e.Suffix, err)
		}
		if e.Suffix == protocol.SuffixError || e.Suffix == protocol.SuffixFinish {
			return fmt.Errorf("%w: %s declares the event %q, which the protocol implies", ErrConflict, r.Type, e.Suffix)
		}
		if slices.ContainsFunc(r.Events[:i], func(prev protocol.EventDecl) bool { return prev.Suffix == e.Suffix }) {
			return fmt.Errorf("%w: %s declares the event %q twice", ErrConflict, r.Type, e.Suffix)
		}
		payload, err := g.schema(e.Type)
		if err != nil {
			return fmt.Errorf("%s:%s: %w", r.Type, e.Suffix, err)
		}
		eventType := subjects.EventType(r.Type, e.Suffix)
		msgKey := id + upperFirst(e.Suffix)
		msg := obj{
			"name":          eventType,
			"title":         eventType,
			"summary":       fmt.Sprintf("A %s event.", eventType),
			"headers":       ref("components/schemas", "FabricEventHeaders"),
			"payload":       payload,
			"correlationId": ref("components/correlationIds", "messageId"),
		}
		if err := event(e.Suffix, msgKey, msg, fmt.Sprintf("Send a %s event.", eventType)); err != nil {
			return err
		}
	}
	if err := event(protocol.SuffixError, "error", nil, fmt.Sprintf("Report that a %s request failed; `finish` follows.", r.Type)); err != nil {
		return err
	}
	return event(protocol.SuffixFinish, "finish", nil, fmt.Sprintf("End a %s request: always, and always last, even after an error or a cancel.", r.Type))
}

// fabricChannels adds the channels every worker shares: cancel and pushes,
// and the messages shared by every route (error, finish).
func (d *asyncDoc) fabricChannels() error {
	d.messages["error"] = obj{
		"name":          "error",
		"title":         "error",
		"summary":       "The request failed: an error code, a message for the client, and optional details.",
		"headers":       ref("components/schemas", "FabricEventHeaders"),
		"payload":       ref("components/schemas", "FabricError"),
		"correlationId": ref("components/correlationIds", "messageId"),
	}
	d.messages["finish"] = obj{
		"name":          "finish",
		"title":         "finish",
		"summary":       "The last event of every request.",
		"description":   "The body is empty (a body of `null` is accepted; any body is ignored). A failed request sends `error` then `finish`; a cancelled one still sends `finish`.",
		"headers":       ref("components/schemas", "FabricEventHeaders"),
		"correlationId": ref("components/correlationIds", "messageId"),
	}
	err := d.channel("the cancel subject", "cancel",
		obj{
			"address":     d.space.Cancel("{sessionId}", "{id}"),
			"title":       "Cancels",
			"description": "The gateway (or a worker calling another route) cancels request `{id}` of session `{sessionId}`.",
			"parameters":  evtParams,
		},
		"cancel",
		obj{
			"name":    "cancel",
			"title":   "cancel",
			"summary": "Stop the request. The message is empty and has no headers.",
		},
		"receive",
		obj{
			"title":       "Receive cancels",
			"summary":     fmt.Sprintf("Receive cancels: subscribe to `%s` outside any queue group.", d.space.Cancels()),
			"description": "Any worker may be running the request, so every worker receives every cancel and ignores those of requests it does not run. A cancel can arrive before its request: remember unknown cancels for a few seconds. After a cancel, stop the work and still send `finish`.",
		})
	if err != nil {
		return err
	}
	d.messages["push"] = obj{
		"name":        "push",
		"title":       "push",
		"summary":     "A frame pushed to clients: the header Fabric-Type is its type, the body its payload.",
		"description": "The client receives `{\"type\": <Fabric-Type>, \"payload\": <body>}`, with no id and no seq. The body is any JSON, or empty for none. Pushes are at most once: sessions not connected at that moment miss them.",
		"headers":     ref("components/schemas", "FabricPushHeaders"),
		"payload":     obj{},
	}
	push := func(id, address, whom, summary string, params obj) error {
		ch := obj{"address": address, "title": "Pushes to " + whom}
		if params != nil {
			ch["parameters"] = params
		}
		return d.channel("the push subject "+address, id, ch, "push", nil, "send",
			obj{"title": "Push to " + whom, "summary": summary})
	}
	// PushUser encodes its argument; the placeholder goes after the encoding.
	return errors.Join(
		push("pushSession", d.space.PushSession("{sessionId}"), "one session",
			"Push a frame to session `{sessionId}`, wherever it is connected.",
			obj{"sessionId": ref("components/parameters", "sessionId")}),
		push("pushUser", d.space.PushUser("")+"{user}", "one user",
			"Push a frame to every session of user `{user}`. Gateways subscribe only for authenticated sessions.",
			obj{"user": ref("components/parameters", "user")}),
		push("pushAll", d.space.PushAll(), "every session",
			"Push a frame to every session on every gateway.", nil),
	)
}

func parameters() obj {
	return obj{
		"sessionId": obj{
			"description": fmt.Sprintf("The session id: %d to %d characters of `[A-Za-z0-9_-]`. On a request, the same as the header Fabric-Session.", subjects.MinSessionIDLen, subjects.MaxSessionIDLen),
		},
		"id": obj{
			"description": fmt.Sprintf("The message id of the request, unique within its session: 1 to %d characters of `[A-Za-z0-9_-]`. The same as the header Fabric-Id.", subjects.MaxIDLen),
		},
		"user": obj{
			"description": "The user id, encoded as one subject token: unpadded base64url of its UTF-8 bytes (`alice@example.com` → `YWxpY2VAZXhhbXBsZS5jb20`).",
			"examples":    []any{subjects.EncodeUser("alice@example.com")},
		},
	}
}

var correlationID = obj{
	"description": "The request's message id: the header Fabric-Id, on a request and on each of its events.",
	"location":    "$message.header#/" + subjects.HeaderID,
}

// builtinSchemas are the schemas of the contract itself, named so as not to
// clash with a route's Go types (a clash is an [ErrConflict]).
func builtinSchemas() map[string]obj {
	name := fmt.Sprintf("[A-Za-z][A-Za-z0-9_-]{0,%d}", subjects.MaxSegmentLen-1)
	pushType := fmt.Sprintf("^%s(/%s){0,%d}(:[A-Za-z][A-Za-z0-9_-]{0,%d})?$", name, name, subjects.MaxTypeSegments-1, subjects.MaxSuffixLen-1)
	idHeader := obj{
		"type":        "string",
		"description": "The message id of the request.",
		"pattern":     fmt.Sprintf("^[A-Za-z0-9_-]{1,%d}$", subjects.MaxIDLen),
	}
	traceparent := obj{
		"type":        "string",
		"description": "W3C trace context. On a request, forwarded from the client only when well-formed; on an event, the request's.",
		"pattern":     "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
	}
	headers := func(description string, props obj, required ...string) obj {
		s := obj{"type": "object", "description": description, "properties": props}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	var codes []any
	for _, e := range protocol.ErrorCodes {
		codes = append(codes, string(e.Code))
	}
	return map[string]obj{
		"FabricRequestHeaders": headers("The NATS headers of a request. Header names are case-sensitive.", obj{
			subjects.HeaderID: idHeader,
			subjects.HeaderSession: obj{
				"type":        "string",
				"description": "The session id.",
				"pattern":     fmt.Sprintf("^[A-Za-z0-9_-]{%d,%d}$", subjects.MinSessionIDLen, subjects.MaxSessionIDLen),
			},
			subjects.HeaderUser: obj{
				"type":        "string",
				"description": "The authenticated user id; absent for anonymous sessions.",
			},
			subjects.HeaderClaims: obj{
				"type":        "string",
				"description": "The user's forwarded claims (the gateway's --jwt-forward-claims, or the connect hook's claims): a JSON object whose values are strings. Absent when there are none.",
			},
			subjects.HeaderTraceparent: traceparent,
			subjects.HeaderTracestate: obj{
				"type":        "string",
				"description": "W3C trace context, forwarded only together with a valid traceparent.",
				"pattern":     "^[\\x20-\\x7e]{1,512}$",
			},
		}, subjects.HeaderID, subjects.HeaderSession),
		"FabricEventHeaders": headers("The NATS headers of an event. Header names are case-sensitive.", obj{
			subjects.HeaderID: idHeader,
			subjects.HeaderSeq: obj{
				"type":        "string",
				"description": "The event's number within its request, in decimal: 1, 2, … in publishing order, finish included. The gateway drops an event whose seq it has already delivered.",
				"pattern":     "^[1-9][0-9]*$",
			},
			subjects.HeaderTraceparent: traceparent,
		}, subjects.HeaderID, subjects.HeaderSeq),
		"FabricPushHeaders": headers("The NATS headers of a push. Header names are case-sensitive.", obj{
			subjects.HeaderType: obj{
				"type":        "string",
				"description": "The type of the frame the clients receive: a route typeName or an event type `<typeName>:<suffix>`, outside `sys/`. A push without a valid Fabric-Type is dropped.",
				"pattern":     pushType,
			},
		}, subjects.HeaderType),
		"FabricError": {
			"type":        "object",
			"description": "The payload of an `error` event.",
			"properties": obj{
				"code": obj{
					"type":        "string",
					"description": "An error code: one of the fabric's (see examples) or a handler's own.",
					"examples":    codes,
				},
				"message": obj{
					"type":        "string",
					"description": "A message for the client; no internal details.",
				},
				"details": obj{
					"description": "Optional details, any JSON.",
				},
			},
			"required": []string{"code", "message"},
		},
	}
}

func description(space subjects.Space, routes []protocol.RouteInfo) string {
	var names []string
	for _, r := range routes {
		names = append(names, "`"+r.Type+"`")
	}
	p := space.Prefix()
	return strings.Join([]string{
		fmt.Sprintf("The NATS contract between Fabric gateways and workers (v1) for the routes %s, under the subject prefix `%s`. "+
			"The prose contract is docs/nats.md. Generated from the Go route declarations by `fabric gen asyncapi`; do not edit.", strings.Join(names, ", "), p),
		"**Point of view: a worker's.** A worker *receives* requests and cancels, and *sends* events and pushes. " +
			"A gateway, or a worker calling another route, does the opposite: it sends requests and cancels and receives events.",
		fmt.Sprintf("**Requests.** A request for route T is published on `%s.req.<T>` (T's `/` become `.`), with the NATS reply subject "+
			"R = `%s.evt.{sessionId}.{id}`. Workers subscribe in the queue group `%s`, so that each request runs once. "+
			"The body is the params JSON, `null` when the client sent none.", p, p, space.QueueGroup()),
		"**Events.** A worker answers by publishing events to `R.<T>.<suffix>`, never to R itself, numbered 1, 2, … in the header Fabric-Seq. " +
			"Every request ends with `finish` (empty body), whatever happened; a failed request sends `error` then `finish`. " +
			"The gateway drops events after the finish, duplicates (a seq it has already delivered) and events of requests that are no longer in flight.",
		fmt.Sprintf("**Cancel.** The gateway publishes an empty message to `%s.cancel.{sessionId}.{id}` when the client cancels, the request's "+
			"inactivity timeout fires, or the client goes away. Every worker receives it (no queue group); the worker that runs the request stops it and still sends `finish`.", p),
		"**Pushes** go to one session, one user or everyone, with the frame type in the header Fabric-Type; at most once.",
		"**Headers** are case-sensitive and spelled exactly as here. " +
			"When no worker serves a route, the NATS server answers on R itself with a 503 no-responders status; that and the gateways' session takeover subjects are not part of a worker's contract.",
	}, "\n\n")
}

// routeID turns a typeName into an AsyncAPI id: camelCase over its segments,
// "demo/count" → "demoCount". Different typeNames can give one id; the
// generator reports that as an [ErrConflict].
func routeID(typeName string) string {
	segments := strings.Split(typeName, "/")
	for i := range segments {
		if i == 0 {
			segments[i] = lowerFirst(segments[i])
		} else {
			segments[i] = upperFirst(segments[i])
		}
	}
	return strings.Join(segments, "")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// schemaGen maps Go types to JSON Schemas (the AsyncAPI Schema Object, a
// superset of JSON Schema draft 07) by their JSON encoding.
type schemaGen struct {
	schemas obj                     // components/schemas
	names   map[string]reflect.Type // schema name → the Go type it was made from (nil: built in)
}

// schema returns the schema of t, declaring a component schema for each
// named struct type on first use and referring to it.
func (g *schemaGen) schema(t reflect.Type) (obj, error) {
	if t == nil {
		return obj{}, nil
	}
	switch {
	case t == rawMessageType:
		return obj{}, nil
	case t == timeType:
		return obj{"type": "string", "format": "date-time"}, nil
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && (t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType)):
		return obj{}, nil // custom JSON: its shape is not in the type
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && (t.Implements(textType) || reflect.PointerTo(t).Implements(textType)):
		return obj{"type": "string"}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return obj{"type": "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return obj{"type": "integer"}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return obj{"type": "integer", "minimum": 0}, nil
	case reflect.Float32, reflect.Float64:
		return obj{"type": "number"}, nil
	case reflect.String:
		return obj{"type": "string"}, nil
	case reflect.Interface:
		return obj{}, nil
	case reflect.Pointer:
		elem, err := g.schema(t.Elem())
		return nullable(elem), err
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return obj{"type": "string", "contentEncoding": "base64"}, nil
		}
		elem, err := g.schema(t.Elem())
		s := obj{"type": "array", "items": elem}
		if t.Kind() == reflect.Array {
			s["minItems"], s["maxItems"] = t.Len(), t.Len()
		}
		return s, err
	case reflect.Map:
		s := obj{"type": "object"}
		if t.Key().Kind() != reflect.String && !t.Key().Implements(textType) {
			switch t.Key().Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				s["propertyNames"] = obj{"pattern": "^-?[0-9]+$"}
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				s["propertyNames"] = obj{"pattern": "^[0-9]+$"}
			default:
				return nil, fmt.Errorf("%w: map key %s", ErrUnsupported, t.Key())
			}
		}
		elem, err := g.schema(t.Elem())
		s["additionalProperties"] = elem
		return s, err
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		return g.declare(t)
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, t)
	}
}

// declare adds components/schemas/Name once per named struct type and
// returns a reference to it.
func (g *schemaGen) declare(t reflect.Type) (obj, error) {
	name := t.Name()
	if i := strings.IndexByte(name, '['); i >= 0 { // a generic type's instance
		name = name[:i]
	}
	if prev, ok := g.names[name]; ok {
		if prev == nil {
			return nil, fmt.Errorf("%w: the type %s has the name of a built-in schema", ErrConflict, t)
		}
		if prev != t {
			return nil, fmt.Errorf("%w: two types named %s (%s and %s)", ErrUnsupported, name, prev, t)
		}
		return ref("components/schemas", name), nil
	}
	g.names[name] = t // before the body: a type may refer to itself
	s, err := g.object(t)
	if err != nil {
		return nil, err
	}
	s["title"] = name
	g.schemas[name] = s
	return ref("components/schemas", name), nil
}

// object renders a struct's fields as an object schema. Fields without
// omitempty or omitzero are required; an empty struct admits only {}.
func (g *schemaGen) object(t reflect.Type) (obj, error) {
	props := obj{}
	var required []string
	if err := g.fields(t, props, &required); err != nil {
		return nil, err
	}
	if len(props) == 0 {
		return obj{"type": "object", "additionalProperties": false}, nil
	}
	s := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s, nil
}

func (g *schemaGen) fields(t reflect.Type, props obj, required *[]string) error {
	return jsonFields(t, func(name string, f reflect.StructField, optional bool) error {
		s, err := g.schema(f.Type)
		if err != nil {
			return fmt.Errorf("field %s: %w", f.Name, err)
		}
		props[name] = s
		if !optional {
			*required = append(*required, name)
		}
		return nil
	})
}

// nullable returns a schema that also admits null: a type list for a schema
// with one type, oneOf otherwise (a reference, say). The empty schema already
// admits null.
func nullable(s obj) obj {
	if len(s) == 0 {
		return s
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t, "null"}
	case []string:
		if slices.Contains(t, "null") {
			return s
		}
		types = append(slices.Clone(t), "null")
	default:
		return obj{"oneOf": []any{s, obj{"type": "null"}}}
	}
	c := maps.Clone(s)
	c["type"] = types
	return c
}
