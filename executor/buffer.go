package executor

import "bytes"

// CapBuffer keeps the first Max bytes written to it and drops the rest,
// setting Truncated. Writes never fail, so a chatty task is not killed by its
// own logging. It is not safe for concurrent writers.
type CapBuffer struct {
	Max       int
	Truncated bool
	buf       bytes.Buffer
}

func (b *CapBuffer) Write(p []byte) (int, error) {
	room := b.Max - b.buf.Len()
	if len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		b.Truncated = true
	} else {
		b.buf.Write(p)
	}
	return len(p), nil
}

// Bytes returns a copy of what was kept.
func (b *CapBuffer) Bytes() []byte { return bytes.Clone(b.buf.Bytes()) }
