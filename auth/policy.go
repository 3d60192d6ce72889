package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/seed82ac63c1/fabric/subjects"
)

// Route patterns.
//
// A pattern is a route typeName whose segments may also be wildcards:
//
//	demo/count     exactly that route
//	demo/*         "*" matches exactly one segment: demo/count, not demo/a/b
//	agent/**       "**", last only, matches one or more segments: agent/x, agent/x/y, not agent
//	**             every route
//	*/status       status of any one-segment service
//
// Wildcards stand alone in their segment ("demo/q*" is invalid), and
// literal segments follow the typeName rules of package subjects.
const (
	anySegment = "*"
	anyRest    = "**"
)

// ErrPattern is wrapped by the error of an invalid route pattern.
var ErrPattern = errors.New("auth: invalid route pattern")

// ValidatePattern checks a route pattern.
func ValidatePattern(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty", ErrPattern)
	}
	if len(p) > subjects.MaxTypeNameLen {
		return fmt.Errorf("%w %q: longer than %d characters", ErrPattern, p, subjects.MaxTypeNameLen)
	}
	segments := strings.Split(p, "/")
	if len(segments) > subjects.MaxTypeSegments {
		return fmt.Errorf("%w %q: more than %d segments", ErrPattern, p, subjects.MaxTypeSegments)
	}
	for i, seg := range segments {
		switch {
		case seg == anySegment:
		case seg == anyRest:
			if i != len(segments)-1 {
				return fmt.Errorf("%w %q: %q may only be the last segment", ErrPattern, p, anyRest)
			}
		case strings.Contains(seg, "*"):
			return fmt.Errorf("%w %q: segment %d: a wildcard must be the whole segment (%q or %q)", ErrPattern, p, i+1, anySegment, anyRest)
		case subjects.ValidateTypeName(seg) != nil:
			return fmt.Errorf("%w %q: segment %d must be %q, %q or match [A-Za-z][A-Za-z0-9_-]{0,63}", ErrPattern, p, i+1, anySegment, anyRest)
		case i == 0 && seg == subjects.ReservedSegment:
			return fmt.Errorf("%w %q: %q is reserved for control frames", ErrPattern, p, subjects.ReservedSegment)
		}
	}
	return nil
}

// MatchPattern reports whether route matches pattern. An invalid pattern
// matches nothing. It allocates nothing.
func MatchPattern(pattern, route string) bool {
	if pattern == "" || route == "" {
		return false
	}
	for {
		pseg, prest, pmore := strings.Cut(pattern, "/")
		if pseg == anyRest {
			return !pmore && route != "" // "**" must be last and match one segment or more
		}
		rseg, rrest, rmore := strings.Cut(route, "/")
		if rseg == "" || (pseg != anySegment && (pseg != rseg || strings.Contains(pseg, "*"))) {
			return false
		}
		if !pmore || !rmore {
			return !pmore && !rmore
		}
		pattern, route = prest, rrest
	}
}

func matchAny(patterns []string, route string) bool {
	for _, p := range patterns {
		if MatchPattern(p, route) {
			return true
		}
	}
	return false
}

// PolicyFile is the content of a route policy file, in JSON or YAML:
//
//	{
//	  "everyone": ["public/**"],
//	  "roles": {
//	    "admin":   ["**"],
//	    "support": ["demo/*", "agent/**"]
//	  }
//	}
//
// In YAML, quote patterns that start with "*": a bare * begins an alias.
type PolicyFile struct {
	// Everyone lists the patterns allowed to every authenticated identity.
	Everyone []string `json:"everyone" yaml:"everyone"`
	// Roles maps a role name to the patterns it allows.
	Roles map[string][]string `json:"roles" yaml:"roles"`
}

// Policy decides which routes an identity may call. A nil *Policy is valid:
// it leaves the decision to the identity's own route restriction.
//
// The rule, in [Policy.Allowed]: every source that applies must allow the
// route. The sources are the identity's Routes (when not nil: the token's
// route claim or the connect hook's routes) and the policy (when there is
// one: Everyone plus the patterns of each of the identity's Roles). A token
// can thus narrow what the operator's policy allows but never widen it. With
// no source, every route is allowed.
//
// A Policy is immutable and safe for concurrent use.
type Policy struct {
	everyone []string
	roles    map[string][]string
}

// NewPolicy checks every pattern of f and returns its policy.
func NewPolicy(f PolicyFile) (*Policy, error) {
	p := &Policy{everyone: slices.Clone(f.Everyone), roles: make(map[string][]string, len(f.Roles))}
	for i, pat := range f.Everyone {
		if err := ValidatePattern(pat); err != nil {
			return nil, fmt.Errorf("%w: everyone[%d]: %w", ErrConfig, i, err)
		}
	}
	for role, pats := range f.Roles {
		if !safeValue(role) {
			return nil, fmt.Errorf("%w: role %q: want 1–%d printable characters", ErrConfig, role, MaxClaimBytes)
		}
		for i, pat := range pats {
			if err := ValidatePattern(pat); err != nil {
				return nil, fmt.Errorf("%w: roles.%s[%d]: %w", ErrConfig, role, i, err)
			}
		}
		p.roles[role] = slices.Clone(pats)
	}
	return p, nil
}

// ParsePolicy parses a policy file's content: JSON, or YAML. Unknown fields
// are errors, so that a misspelt key cannot silently drop a rule.
func ParsePolicy(data []byte) (*Policy, error) {
	var f PolicyFile
	dec := yaml.NewDecoder(bytes.NewReader(data)) // YAML 1.2 is a superset of JSON
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty policy", ErrConfig)
		}
		return nil, fmt.Errorf("%w: policy: %w", ErrConfig, err)
	}
	return NewPolicy(f)
}

// LoadPolicy reads and parses the policy file at path.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Allowed reports whether id may call route; see [Policy] for the rule.
func (p *Policy) Allowed(id Identity, route string) bool {
	if id.Routes != nil && !matchAny(id.Routes, route) {
		return false
	}
	if p == nil {
		return true
	}
	if matchAny(p.everyone, route) {
		return true
	}
	for _, role := range id.Roles {
		if matchAny(p.roles[role], route) {
			return true
		}
	}
	return false
}
