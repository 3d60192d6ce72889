//go:build !unix

package gateway

const rawReadSupported = false

func (cr *connReader) readFD(uintptr) bool { panic("unreachable") }
