package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/auth"
	"github.com/seed82ac63c1/fabric/gateway"
)

// authFlags configure the gateway's authentication: JWTs (a secret, public
// keys or a JWKS), or the connect hook; and the route policy.
type authFlags struct {
	jwtSecret, jwtSecretFile, jwtPublicKeys, jwksFile, jwksURL string
	issuer, audience, algorithms                               string
	forwardClaims, routesClaim, rolesClaim                     string
	hook                                                       bool
	hookSubject                                                string
	hookTimeout                                                time.Duration
	policy                                                     string
	cfg                                                        gateway.AuthConfig
}

func (a *authFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.jwtSecret, "jwt-secret", "", "HS256 secret of client JWTs (32 bytes or more); prefer FABRIC_JWT_SECRET or --jwt-secret-file, which ps does not show")
	fs.StringVar(&a.jwtSecretFile, "jwt-secret-file", "", "file holding the HS256 secret of client JWTs")
	fs.StringVar(&a.jwtPublicKeys, "jwt-public-keys", "", "PEM file of the RSA or EC public keys (or certificates) of client JWTs")
	fs.StringVar(&a.jwksFile, "jwks-file", "", "JWK Set file of the keys of client JWTs")
	fs.StringVar(&a.jwksURL, "jwks-url", "", "https URL of the issuer's JWK Set, fetched at start, hourly, and on an unknown kid (at most once a minute)")
	fs.StringVar(&a.issuer, "jwt-issuer", "", "required iss of client JWTs")
	fs.StringVar(&a.audience, "jwt-audience", "", "comma-separated accepted aud values of client JWTs")
	fs.StringVar(&a.algorithms, "jwt-algorithms", "", "comma-separated accepted alg values (default: from the keys: HS256, RS256, ES256…)")
	fs.StringVar(&a.forwardClaims, "jwt-forward-claims", "", "comma-separated string claims forwarded to workers in Fabric-Claims")
	fs.StringVar(&a.routesClaim, "jwt-routes-claim", "", "claim holding the route patterns a token allows (a token without it allows none)")
	fs.StringVar(&a.rolesClaim, "jwt-roles-claim", "", "claim holding the user's roles, which --policy maps to route patterns")
	fs.BoolVar(&a.hook, "auth-hook", false, "authenticate clients with the application's connect hook on <prefix>.auth.connect over NATS")
	fs.StringVar(&a.hookSubject, "auth-hook-subject", "", "subject of the connect hook (default: <prefix>.auth.connect)")
	fs.DurationVar(&a.hookTimeout, "auth-hook-timeout", auth.DefaultNATSTimeout, "time the connect hook has to answer")
	fs.StringVar(&a.policy, "policy", "", "route policy file (JSON or YAML): the route patterns of everyone and of each role")
	fs.DurationVar(&a.cfg.RefreshGrace, "refresh-grace", gateway.DefaultRefreshGrace, "how long after its token expires a connection may send sys/refresh before it is closed with 4504")
	fs.IntVar(&a.cfg.MaxConnectionsPerUser, "max-connections-per-user", gateway.DefaultMaxConnectionsPerUser, "connections of one user to this gateway (negative: unlimited)")
}

// errAuthConfig wraps every error of the auth flags.
var errAuthConfig = errors.New("auth flags")

// config returns the gateway's AuthConfig, or nil when no authenticator is
// configured (anonymous sessions), and a closer for the authenticator's
// background work. nc carries the connect hook's requests.
func (a *authFlags) config(nc *nats.Conn, prefix string, log *slog.Logger) (*gateway.AuthConfig, io.Closer, error) {
	cfg := a.cfg
	var closer io.Closer = nopCloser{}
	jwtCfg, useJWT, err := a.jwtConfig()
	if err != nil {
		return nil, nil, err
	}
	switch {
	case useJWT && a.hook:
		return nil, nil, fmt.Errorf("%w: --auth-hook and JWT keys are exclusive: pick one authenticator", errAuthConfig)
	case useJWT:
		j, err := auth.NewJWT(jwtCfg, auth.WithLogger(log))
		if err != nil {
			return nil, nil, err
		}
		cfg.Authenticator, closer = j, j
	case a.hook:
		h, err := auth.NewNATS(nc, auth.NATSConfig{Prefix: prefix, Subject: a.hookSubject, Timeout: a.hookTimeout})
		if err != nil {
			return nil, nil, err
		}
		cfg.Authenticator = h
	case a.policy != "":
		return nil, nil, fmt.Errorf("%w: --policy needs an authenticator (--jwt-… or --auth-hook): anonymous clients have no roles", errAuthConfig)
	default:
		return nil, closer, nil
	}
	if a.policy != "" {
		if cfg.Policy, err = auth.LoadPolicy(a.policy); err != nil {
			closer.Close()
			return nil, nil, err
		}
	}
	return &cfg, closer, nil
}

// jwtConfig returns the JWT authenticator's config, and whether any key
// source is set.
func (a *authFlags) jwtConfig() (auth.JWTConfig, bool, error) {
	cfg := auth.JWTConfig{
		JWKSFile:      a.jwksFile,
		JWKSURL:       a.jwksURL,
		Issuer:        a.issuer,
		Audience:      splitList(a.audience),
		Algorithms:    splitList(a.algorithms),
		ForwardClaims: splitList(a.forwardClaims),
		RoutesClaim:   a.routesClaim,
		RolesClaim:    a.rolesClaim,
	}
	switch {
	case a.jwtSecret != "" && a.jwtSecretFile != "":
		return cfg, false, fmt.Errorf("%w: --jwt-secret and --jwt-secret-file are exclusive", errAuthConfig)
	case a.jwtSecret != "":
		cfg.HMACSecret = []byte(a.jwtSecret)
	case a.jwtSecretFile != "":
		b, err := os.ReadFile(a.jwtSecretFile)
		if err != nil {
			return cfg, false, fmt.Errorf("%w: %w", errAuthConfig, err)
		}
		cfg.HMACSecret = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if a.jwtPublicKeys != "" {
		b, err := os.ReadFile(a.jwtPublicKeys)
		if err != nil {
			return cfg, false, fmt.Errorf("%w: %w", errAuthConfig, err)
		}
		cfg.PublicKeys = b
	}
	use := len(cfg.HMACSecret) > 0 || len(cfg.PublicKeys) > 0 || cfg.JWKSFile != "" || cfg.JWKSURL != ""
	if !use && (cfg.Issuer != "" || len(cfg.Audience) > 0 || len(cfg.ForwardClaims) > 0 || cfg.RoutesClaim != "" || cfg.RolesClaim != "") {
		return cfg, false, fmt.Errorf("%w: --jwt-… settings without a key source (--jwt-secret, --jwt-secret-file, --jwt-public-keys, --jwks-file or --jwks-url)", errAuthConfig)
	}
	return cfg, use, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
