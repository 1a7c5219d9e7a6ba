package wasm

import "errors"

// memoryMinimums returns the initial sizes, in pages, of the memories a
// module defines (not only those it exports: wazero's API shows only
// exported ones). wazero allocates the initial size at instantiation without
// asking whether it fits, so it has to be checked before. bin must already
// have been validated by wazero.
func memoryMinimums(bin []byte) ([]uint64, error) {
	r := reader{b: bin[8:]} // magic and version
	for len(r.b) > 0 {
		id := r.byte()
		size := r.uleb()
		if r.err != nil || size > uint64(len(r.b)) {
			return nil, errBadBinary
		}
		body := reader{b: r.b[:size]}
		r.b = r.b[size:]
		if id != 5 { // memory section
			continue
		}
		var mins []uint64
		for n := body.uleb(); n > 0 && body.err == nil; n-- {
			flags := body.byte()
			mins = append(mins, body.uleb())
			if flags&1 != 0 {
				body.uleb() // max
			}
		}
		return mins, body.err
	}
	return nil, nil
}

var errBadBinary = errors.New("malformed module binary")

type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.err = errBadBinary
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uleb() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errBadBinary
	return 0
}
