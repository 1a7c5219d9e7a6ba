//go:build !unix

package storage

import "errors"

// mapLeaf is not available here: a leafPool's buffers come from the heap.
func mapLeaf(int) ([]byte, error) { return nil, errors.New("no anonymous mappings on this system") }

func releaseLeaf([]byte) {}
