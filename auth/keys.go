package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Errors of the key lookup; classify turns them into reasons.
var (
	errNoKey      = errors.New("no key for the algorithm")
	errUnknownKID = errors.New("unknown kid")
	errKeyType    = errors.New("key type does not match the algorithm")
	errBadKID     = errors.New("kid is not a string")
)

// family is a group of algorithms that share a key type. A key is only ever
// handed to algorithms of its own family: this, not just the parser's alg
// list, is what defeats HS256 tokens "signed" with an RSA public key.
type family int

const (
	famNone family = iota
	famHMAC
	famRSA // RS* and PS*
	famEC
)

var algFamilies = map[string]family{
	"HS256": famHMAC, "HS384": famHMAC, "HS512": famHMAC,
	"RS256": famRSA, "RS384": famRSA, "RS512": famRSA,
	"PS256": famRSA, "PS384": famRSA, "PS512": famRSA,
	"ES256": famEC, "ES384": famEC, "ES512": famEC,
}

func familyOf(key any) family {
	switch key.(type) {
	case []byte:
		return famHMAC
	case *rsa.PublicKey:
		return famRSA
	case *ecdsa.PublicKey:
		return famEC
	}
	return famNone
}

// keySet holds every key a JWT authenticator checks signatures with.
type keySet struct {
	hmac []byte
	rsa  []*rsa.PublicKey
	ec   []*ecdsa.PublicKey
	jwks []jwkset.Storage // JWKSFile, then JWKSURL
}

func (k *keySet) empty() bool {
	return k.hmac == nil && len(k.rsa) == 0 && len(k.ec) == 0 && len(k.jwks) == 0
}

// addPEM adds every public key in data.
func (k *keySet) addPEM(data []byte) error {
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		n++
		var key any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			return fmt.Errorf("%w: PublicKeys: PEM block %d is a %q; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never a private key)", ErrConfig, n, block.Type)
		}
		if err != nil {
			return fmt.Errorf("%w: PublicKeys: PEM block %d: %w", ErrConfig, n, err)
		}
		switch key := key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < 2048 {
				return fmt.Errorf("%w: PublicKeys: PEM block %d: RSA key of %d bits; at least 2048 are needed", ErrConfig, n, key.N.BitLen())
			}
			k.rsa = append(k.rsa, key)
		case *ecdsa.PublicKey:
			k.ec = append(k.ec, key)
		default:
			return fmt.Errorf("%w: PublicKeys: PEM block %d: unsupported key type %T", ErrConfig, n, key)
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: PublicKeys holds no PEM block", ErrConfig)
	}
	return nil
}

// algorithms checks the configured algorithms against the keys, or derives
// them from the keys when none are configured.
func (k *keySet) algorithms(configured []string) ([]string, error) {
	if len(configured) == 0 {
		var algs []string
		if k.hmac != nil {
			algs = append(algs, "HS256")
		}
		if len(k.rsa) > 0 {
			algs = append(algs, "RS256")
		}
		for _, key := range k.ec {
			switch key.Curve {
			case elliptic.P256():
				algs = append(algs, "ES256")
			case elliptic.P384():
				algs = append(algs, "ES384")
			case elliptic.P521():
				algs = append(algs, "ES512")
			}
		}
		if len(k.jwks) > 0 {
			algs = append(algs, "RS256", "ES256")
		}
		slices.Sort(algs)
		return slices.Compact(algs), nil
	}
	for _, alg := range configured {
		switch algFamilies[alg] {
		case famNone:
			return nil, fmt.Errorf("%w: algorithm %q is not supported", ErrConfig, alg)
		case famHMAC:
			if k.hmac == nil {
				return nil, fmt.Errorf("%w: algorithm %s needs HMACSecret", ErrConfig, alg)
			}
		default:
			if len(k.rsa) == 0 && len(k.ec) == 0 && len(k.jwks) == 0 {
				return nil, fmt.Errorf("%w: algorithm %s needs PublicKeys, JWKSFile or JWKSURL", ErrConfig, alg)
			}
		}
	}
	return slices.Clone(configured), nil
}

// lookup returns the key, or the set of keys, that may have signed t. The
// parser has already checked t's alg against the allowed list.
func (k *keySet) lookup(ctx context.Context, t *jwt.Token) (any, error) {
	fam := algFamilies[t.Method.Alg()]
	if fam == famHMAC {
		if k.hmac == nil {
			return nil, errNoKey
		}
		return k.hmac, nil
	}
	if fam == famNone {
		return nil, errNoKey
	}

	kidValue, hasKID := t.Header[jwkset.HeaderKID]
	if hasKID && len(k.jwks) > 0 {
		kid, ok := kidValue.(string)
		if !ok {
			return nil, errBadKID
		}
		return k.jwksKey(ctx, kid, t.Method.Alg(), fam)
	}

	// No kid, or no JWKS to look it up in: try each key of the family.
	var set jwt.VerificationKeySet
	switch fam {
	case famRSA:
		for _, key := range k.rsa {
			set.Keys = append(set.Keys, key)
		}
	case famEC:
		for _, key := range k.ec {
			set.Keys = append(set.Keys, key)
		}
	}
	for _, store := range k.jwks {
		all, err := store.KeyReadAll(ctx)
		if err != nil {
			continue
		}
		for _, jwk := range all {
			if key, ok := usable(jwk, t.Method.Alg(), fam); ok {
				set.Keys = append(set.Keys, key)
			}
		}
	}
	if len(set.Keys) == 0 {
		return nil, errNoKey
	}
	return set, nil
}

// jwksKey looks kid up in the JWK Sets. A JWK is used only if its own alg
// (when it has one) is the token's, its use (when it has one) is "sig", and
// its key type is the alg's family. A miss in a JWKS URL's set prompts a
// refresh, rate-limited by the storage; any lookup failure, including a
// rate-limited refresh, is an unknown kid.
func (k *keySet) jwksKey(ctx context.Context, kid, alg string, fam family) (any, error) {
	for _, store := range k.jwks {
		jwk, err := store.KeyRead(ctx, kid)
		if err != nil {
			continue
		}
		key, ok := usable(jwk, alg, fam)
		if !ok {
			return nil, errKeyType
		}
		return key, nil
	}
	return nil, errUnknownKID
}

// usable returns jwk's public key if it may verify a token with alg, of
// family fam.
func usable(jwk jwkset.JWK, alg string, fam family) (any, bool) {
	m := jwk.Marshal()
	if (m.ALG != "" && m.ALG.String() != alg) || (m.USE != "" && m.USE != jwkset.UseSig) {
		return nil, false
	}
	key := publicOf(jwk.Key())
	return key, familyOf(key) == fam
}

// publicOf returns the public half of a private key, or key itself.
func publicOf(key any) any {
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		return pk.Public()
	}
	return key
}
