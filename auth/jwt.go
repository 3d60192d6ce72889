package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWTConfig configures a [JWT] authenticator. At least one key source
// (HMACSecret, PublicKeys, JWKSFile, JWKSURL) is required; several may be
// combined, and each token is checked only against keys of its algorithm's
// family.
type JWTConfig struct {
	// Algorithms are the accepted "alg" values. A token with any other alg,
	// including "none", is rejected before any key is looked up. Supported:
	// HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256,
	// ES384, ES512. Empty means derived from the key sources: HS256 with
	// HMACSecret; RS256 with an RSA key in PublicKeys; ES256, ES384 or
	// ES512 with an EC key on P-256, P-384 or P-521; RS256 and ES256 with a
	// JWKS.
	Algorithms []string

	// HMACSecret is the shared secret of the HS algorithms: at least 32
	// bytes. Only HS tokens are checked against it, and it is never used
	// for any other family.
	HMACSecret []byte

	// PublicKeys holds PEM blocks: "PUBLIC KEY" (RSA or EC, PKIX), "RSA
	// PUBLIC KEY" (PKCS #1) or "CERTIFICATE" (its key is used; the chain is
	// not verified). Private keys are refused: a gateway needs only public
	// ones. A token's kid is ignored for these keys: each key of the
	// token's family is tried.
	PublicKeys []byte

	// JWKSFile is the path of a JWK Set document, read once by [NewJWT].
	// Keys are looked up by the token's kid; a token without a kid is
	// checked against each key of its family.
	JWKSFile string

	// JWKSURL is the https (or, for tests and local issuers, http) URL of a
	// JWK Set. It is fetched by [NewJWT] (which fails if the fetch fails),
	// again every JWKSRefreshInterval, and again when a token names an
	// unknown kid, at most once per JWKSMinRefreshInterval. Only this URL
	// is ever fetched: token headers such as jku, x5u or kid never name
	// what to fetch.
	JWKSURL string
	// JWKSRefreshInterval is the period of the background refresh. 0 means
	// 1 hour.
	JWKSRefreshInterval time.Duration
	// JWKSMinRefreshInterval bounds refreshes prompted by tokens with an
	// unknown kid, so that forged kids cannot make the gateway hammer the
	// issuer. 0 means 1 minute.
	JWKSMinRefreshInterval time.Duration
	// JWKSTimeout bounds each JWKS fetch. 0 means 10 seconds.
	JWKSTimeout time.Duration

	// Issuer, when not empty, must equal the token's "iss".
	Issuer string
	// Audience, when not empty, must contain one of the token's "aud"
	// values.
	Audience []string
	// Leeway is the clock skew tolerated when checking "exp" and "nbf".
	// 0 means 30 seconds; a negative value means none.
	Leeway time.Duration

	// ForwardClaims names the claims copied into [Identity.Claims] for
	// workers. A claim is copied only if its value is a non-empty string of
	// at most [MaxClaimBytes] bytes without control characters; other
	// values are left out. At most [MaxClaims] names.
	ForwardClaims []string
	// RoutesClaim, when not empty, names the claim holding the route
	// patterns the token allows: a string (one pattern) or an array of
	// strings. A token without the claim allows no route (fail closed:
	// issue "**" to allow every route); a token whose claim is not a valid
	// list of patterns is rejected.
	RoutesClaim string
	// RolesClaim, when not empty, names the claim holding the user's roles
	// for a [Policy]: a string (one role) or an array of strings. A token
	// without it has no roles.
	RolesClaim string

	// MaxTokenBytes bounds the token's length; a longer token is rejected
	// before it is decoded. 0 means 8 KiB.
	MaxTokenBytes int
}

// Defaults of [JWTConfig].
const (
	DefaultJWKSRefreshInterval    = time.Hour
	DefaultJWKSMinRefreshInterval = time.Minute
	DefaultJWKSTimeout            = 10 * time.Second
	DefaultLeeway                 = 30 * time.Second
	DefaultMaxTokenBytes          = 8 << 10
	MinHMACSecretBytes            = 32
)

// JWT authenticates JSON Web Tokens signed with configured keys. It is safe
// for concurrent use. Call [JWT.Close] to stop its JWKS refresh.
type JWT struct {
	parser        *jwt.Parser
	keys          keySet
	forward       []string
	routesClaim   string
	rolesClaim    string
	maxTokenBytes int
	close         context.CancelFunc
}

// NewJWT checks cfg, loads its keys and, with a JWKSURL, fetches the JWK Set
// (bounded by JWKSTimeout) and starts its background refresh.
func NewJWT(cfg JWTConfig, opts ...Option) (*JWT, error) {
	o := buildOptions(opts)
	if cfg.JWKSRefreshInterval == 0 {
		cfg.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if cfg.JWKSMinRefreshInterval == 0 {
		cfg.JWKSMinRefreshInterval = DefaultJWKSMinRefreshInterval
	}
	if cfg.JWKSTimeout == 0 {
		cfg.JWKSTimeout = DefaultJWKSTimeout
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	}
	if cfg.MaxTokenBytes <= 0 {
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if cfg.JWKSRefreshInterval < 0 || cfg.JWKSMinRefreshInterval < 0 || cfg.JWKSTimeout < 0 {
		return nil, fmt.Errorf("%w: negative JWKS interval or timeout", ErrConfig)
	}
	if err := checkClaimNames(cfg); err != nil {
		return nil, err
	}

	j := &JWT{
		forward:       slices.Clone(cfg.ForwardClaims),
		routesClaim:   cfg.RoutesClaim,
		rolesClaim:    cfg.RolesClaim,
		maxTokenBytes: cfg.MaxTokenBytes,
	}
	if len(cfg.HMACSecret) > 0 {
		if len(cfg.HMACSecret) < MinHMACSecretBytes {
			return nil, fmt.Errorf("%w: HMACSecret is %d bytes; at least %d are needed", ErrConfig, len(cfg.HMACSecret), MinHMACSecretBytes)
		}
		j.keys.hmac = slices.Clone(cfg.HMACSecret)
	}
	if len(cfg.PublicKeys) > 0 {
		if err := j.keys.addPEM(cfg.PublicKeys); err != nil {
			return nil, err
		}
	}
	if cfg.JWKSFile != "" {
		raw, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("%w: JWKSFile: %w", ErrConfig, err)
		}
		var set jwkset.JWKSMarshal
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, fmt.Errorf("%w: JWKSFile %s: %w", ErrConfig, cfg.JWKSFile, err)
		}
		storage, err := set.ToStorage()
		if err != nil {
			return nil, fmt.Errorf("%w: JWKSFile %s: %w", ErrConfig, cfg.JWKSFile, err)
		}
		j.keys.jwks = append(j.keys.jwks, storage)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j.close = cancel
	if cfg.JWKSURL != "" {
		store, err := fetchJWKS(ctx, cfg, o)
		if err != nil {
			cancel()
			return nil, err
		}
		j.keys.jwks = append(j.keys.jwks, store)
	}
	if j.keys.empty() {
		cancel()
		return nil, fmt.Errorf("%w: no key source: set HMACSecret, PublicKeys, JWKSFile or JWKSURL", ErrConfig)
	}

	algs, err := j.keys.algorithms(cfg.Algorithms)
	if err != nil {
		cancel()
		return nil, err
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audience) > 0 {
		popts = append(popts, jwt.WithAudience(cfg.Audience...))
	}
	j.parser = jwt.NewParser(popts...)
	return j, nil
}

func checkClaimNames(cfg JWTConfig) error {
	if len(cfg.ForwardClaims) > MaxClaims {
		return fmt.Errorf("%w: more than %d ForwardClaims", ErrConfig, MaxClaims)
	}
	names := append(slices.Clone(cfg.ForwardClaims), cfg.RoutesClaim, cfg.RolesClaim)
	for i, name := range names {
		if name == "" && i >= len(cfg.ForwardClaims) {
			continue // RoutesClaim and RolesClaim are optional
		}
		if name == "" || len(name) > 128 || !safeText(name) || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("%w: claim name %q: want 1–128 printable characters without spaces", ErrConfig, name)
		}
	}
	return nil
}

func fetchJWKS(ctx context.Context, cfg JWTConfig, o options) (jwkset.Storage, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: JWKSURL %q: want an absolute http(s) URL", ErrConfig, cfg.JWKSURL)
	}
	client := o.httpClient
	if client == nil {
		client = &http.Client{Timeout: cfg.JWKSTimeout}
	}
	logger := o.logger
	remote, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:          client,
		Ctx:             ctx, // ends the refresh goroutine
		HTTPTimeout:     cfg.JWKSTimeout,
		RefreshInterval: cfg.JWKSRefreshInterval,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			logger.WarnContext(ctx, "auth: JWKS refresh failed", "url", cfg.JWKSURL, "error", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: JWKSURL %s: %w", ErrConfig, cfg.JWKSURL, err)
	}
	storage, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{cfg.JWKSURL: remote},
		// A kid missing from the cached set prompts a refresh, at most once
		// per JWKSMinRefreshInterval. A token waits for the limiter only if
		// a refresh is allowed within RateLimitWaitMax, which also bounds
		// the refresh itself; otherwise it fails at once.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.JWKSMinRefreshInterval), 1),
		RateLimitWaitMax:  cfg.JWKSTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: JWKSURL %s: %w", ErrConfig, cfg.JWKSURL, err)
	}
	return storage, nil
}

// Close stops the background JWKS refresh. It is safe to call more than
// once; tokens are still checked against the keys already loaded.
func (j *JWT) Close() error {
	j.close()
	return nil
}

// Authenticate verifies c.Token and returns its identity. Errors match
// [ErrUnauthorized] (and [ErrExpired] for an expired token) and name the
// failed check without quoting the token.
func (j *JWT) Authenticate(ctx context.Context, c Credentials) (Identity, error) {
	switch {
	case c.Token == "":
		return Identity{}, unauthorized("no token")
	case len(c.Token) > j.maxTokenBytes:
		return Identity{}, unauthorized(fmt.Sprintf("token longer than %d bytes", j.maxTokenBytes))
	}
	keyLookedUp := false
	claims := jwt.MapClaims{}
	_, err := j.parser.ParseWithClaims(c.Token, claims, func(t *jwt.Token) (any, error) {
		keyLookedUp = true
		return j.keys.lookup(ctx, t)
	})
	if err != nil {
		return Identity{}, classify(err, keyLookedUp, claims)
	}
	return j.identity(claims)
}

// classify turns a jwt error into one with a fixed reason. The jwt error's
// own text may quote the token's header (its alg, say) and is left out.
// claims are the token's unverified claims, used only to name a missing one.
func classify(err error, keyLookedUp bool, claims jwt.MapClaims) error {
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		for _, name := range []string{"exp", "iss", "aud"} {
			if _, ok := claims[name]; !ok {
				return unauthorized("missing "+name+" claim", jwt.ErrTokenRequiredClaimMissing)
			}
		}
	}
	for _, c := range []struct {
		target error
		reason string
	}{
		{errNoKey, "no key for the token's algorithm"},
		{errUnknownKID, "unknown key id"},
		{errKeyType, "key type does not match the token's algorithm"},
		{errBadKID, "malformed key id"},
		{jwt.ErrTokenMalformed, "malformed token"},
		{jwt.ErrTokenRequiredClaimMissing, "missing claim"},
		{jwt.ErrTokenNotValidYet, "token not valid yet"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
	} {
		if errors.Is(err, c.target) {
			return unauthorized(c.reason, c.target)
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthorized("token expired", ErrExpired, jwt.ErrTokenExpired)
	case !keyLookedUp && (errors.Is(err, jwt.ErrTokenSignatureInvalid) || errors.Is(err, jwt.ErrTokenUnverifiable)):
		// The parser rejects a disallowed or unknown alg before asking
		// for a key.
		return unauthorized("algorithm not allowed", jwt.ErrTokenSignatureInvalid)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthorized("bad signature", jwt.ErrTokenSignatureInvalid)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return unauthorized("token unverifiable", jwt.ErrTokenUnverifiable)
	default:
		return unauthorized("invalid claims", jwt.ErrTokenInvalidClaims)
	}
}

// identity builds the identity of a verified token's claims.
func (j *JWT) identity(claims jwt.MapClaims) (Identity, error) {
	sub, ok := claims["sub"].(string)
	if !ok {
		return Identity{}, unauthorized("no sub claim")
	}
	if why := checkUser(sub); why != "" {
		return Identity{}, unauthorized(why)
	}
	id := Identity{User: sub}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		id.Expires = exp.Time
	}
	for _, name := range j.forward {
		if v, ok := claims[name].(string); ok && safeValue(v) {
			if id.Claims == nil {
				id.Claims = make(map[string]string, len(j.forward))
			}
			id.Claims[name] = v
		}
	}
	if j.routesClaim != "" {
		routes, err := stringList(claims[j.routesClaim])
		if err != nil {
			return Identity{}, unauthorized("routes claim: " + err.Error())
		}
		for _, r := range routes {
			if err := ValidatePattern(r); err != nil {
				return Identity{}, unauthorized("routes claim: invalid route pattern")
			}
		}
		if routes == nil {
			routes = []string{} // no claim: no route
		}
		id.Routes = routes
	}
	if j.rolesClaim != "" {
		roles, err := stringList(claims[j.rolesClaim])
		if err != nil {
			return Identity{}, unauthorized("roles claim: " + err.Error())
		}
		id.Roles = roles
	}
	return id, nil
}

// stringList reads a claim that is absent (nil), one string, or an array of
// strings, each a safe value; at most MaxClaims of them.
func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		if !safeValue(v) {
			return nil, errors.New("invalid value")
		}
		return []string{v}, nil
	case []any:
		if len(v) > MaxClaims {
			return nil, fmt.Errorf("more than %d values", MaxClaims)
		}
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok || !safeValue(s) {
				return nil, errors.New("invalid value")
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, errors.New("neither a string nor an array of strings")
	}
}
