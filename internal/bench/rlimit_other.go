//go:build !unix

package bench

import "errors"

func raiseFileLimit() (uint64, error) { return 0, errors.New("bench: no file limit to raise here") }
