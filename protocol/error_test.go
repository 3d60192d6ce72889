package protocol_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/seed82ac63c1/fabric/protocol"
)

func TestErrorError(t *testing.T) {
	for _, tc := range []struct {
		err  *protocol.Error
		want string
	}{
		{&protocol.Error{Code: protocol.CodeTimeout, Message: "the worker sent nothing for 30s"}, "timeout: the worker sent nothing for 30s"},
		{&protocol.Error{Code: protocol.CodeCancelled}, "cancelled"},
		{&protocol.Error{Code: "quota_exceeded", Message: "try later"}, "quota_exceeded: try later"},
		{protocol.Errorf(protocol.CodeOverloaded, "more than %d requests in flight", 64), "overloaded: more than 64 requests in flight"},
		{protocol.Errorf(protocol.CodeBadRequest, "no verbs"), "bad_request: no verbs"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestErrorIs(t *testing.T) {
	timeout := protocol.Errorf(protocol.CodeTimeout, "after %s", "30s")
	wrapped := fmt.Errorf("request m1: %w", timeout)
	for _, tc := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same code", timeout, &protocol.Error{Code: protocol.CodeTimeout}, true},
		{"same code, other message", timeout, &protocol.Error{Code: protocol.CodeTimeout, Message: "x"}, true},
		{"wrapped", wrapped, &protocol.Error{Code: protocol.CodeTimeout}, true},
		{"wrapped target", timeout, fmt.Errorf("x: %w", &protocol.Error{Code: protocol.CodeTimeout}), true},
		{"joined", errors.Join(io.EOF, timeout), &protocol.Error{Code: protocol.CodeTimeout}, true},
		{"custom code", &protocol.Error{Code: "quota"}, &protocol.Error{Code: "quota"}, true},
		{"other code", timeout, &protocol.Error{Code: protocol.CodeCancelled}, false},
		{"wrapped, other code", wrapped, &protocol.Error{Code: protocol.CodeInternal}, false},
		{"plain target", timeout, errors.New("timeout"), false},
		{"plain error", errors.New("timeout"), &protocol.Error{Code: protocol.CodeTimeout}, false},
		{"nil target", timeout, nil, false},
	} {
		if got := errors.Is(tc.err, tc.target); got != tc.want {
			t.Errorf("%s: errors.Is(%v, %v) = %v, want %v", tc.name, tc.err, tc.target, got, tc.want)
		}
	}
}

func TestAsError(t *testing.T) {
	e := protocol.Errorf(protocol.CodeForbidden, "route %s", "admin/x")
	for _, tc := range []struct {
		name string
		err  error
		want *protocol.Error
	}{
		{"itself", e, e},
		{"wrapped", fmt.Errorf("call: %w", e), e},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", e)), e},
		{"joined", errors.Join(io.EOF, e), e},
		{"plain", io.EOF, nil},
		{"nil", nil, nil},
	} {
		got, ok := protocol.AsError(tc.err)
		if got != tc.want || ok != (tc.want != nil) {
			t.Errorf("%s: AsError(%v) = %v, %v; want %v", tc.name, tc.err, got, ok, tc.want)
		}
	}
}

func TestErrorPayload(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *protocol.Error
		want string
	}{
		{"code and message", &protocol.Error{Code: protocol.CodeTimeout, Message: "m"}, `{"code":"timeout","message":"m"}`},
		{"empty message is kept", &protocol.Error{Code: protocol.CodeCancelled}, `{"code":"cancelled","message":""}`},
		{"details", &protocol.Error{Code: "quota", Message: "m", Details: json.RawMessage(`{"retryAfterMs":100}`)},
			`{"code":"quota","message":"m","details":{"retryAfterMs":100}}`},
		{"details compacted", &protocol.Error{Code: "quota", Message: "m", Details: json.RawMessage(" [ 1 , 2 ] ")},
			`{"code":"quota","message":"m","details":[1,2]}`},
		{"details null", &protocol.Error{Code: "quota", Message: "m", Details: json.RawMessage(`null`)},
			`{"code":"quota","message":"m","details":null}`},
		{"empty details are left out", &protocol.Error{Code: "quota", Message: "m", Details: json.RawMessage{}},
			`{"code":"quota","message":"m"}`},
		{"invalid details fall back", &protocol.Error{Code: protocol.CodeInternal, Message: "m", Details: json.RawMessage(`{bad`)},
			`{"code":"internal","message":"m"}`},
		{"truncated details fall back", &protocol.Error{Code: protocol.CodeInternal, Message: "m", Details: json.RawMessage(`{"a":`)},
			`{"code":"internal","message":"m"}`},
		{"two values as details fall back", &protocol.Error{Code: protocol.CodeInternal, Message: "m", Details: json.RawMessage(`1 2`)},
			`{"code":"internal","message":"m"}`},
		{"message escaped", &protocol.Error{Code: protocol.CodeBadRequest, Message: "type \"a\\b\"\n"},
			`{"code":"bad_request","message":"type \"a\\b\"\n"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.err.Payload()
			if string(got) != tc.want {
				t.Fatalf("Payload() = %s, want %s", got, tc.want)
			}
			var back protocol.Error
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("Payload() %s: %v", got, err)
			}
			if back.Code != tc.err.Code || back.Message != tc.err.Message {
				t.Fatalf("Payload() %s reads back as %+v", got, back)
			}
		})
	}
}
