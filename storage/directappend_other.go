//go:build !linux

package storage

import "errors"

// errNoDirect: direct appends (directAppender) are written for Linux's
// O_DIRECT; elsewhere every batch goes through the page cache.
var errNoDirect = errors.New("direct writes are only used on Linux")

type directAppender struct{}

func openDirectAppender(string) (*directAppender, error) { return nil, errNoDirect }
func (*directAppender) append([]byte, int64) error       { return errNoDirect }
func (*directAppender) flush() error                     { return nil }
func (*directAppender) close()                           {}
func probeDirect(string) error                           { return errNoDirect }
