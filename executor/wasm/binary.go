package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// memoryMinimums returns the initial sizes, in pages, of the memories a
// module defines (not only those it exports: wazero's API shows only
// exported ones). wazero allocates the initial size at instantiation without
// asking whether it fits, so it has to be checked before. bin must already
// have been validated by wazero.
func memoryMinimums(bin []byte) ([]uint64, error) {
	if len(bin) < 8 {
		return nil, errBadBinary
	}
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

// Bounds on what a module may declare, so that decoding it takes memory in
// proportion to its size (see sanitizeModule).
const (
	// maxFunctionLocals is the most locals one function may declare; the
	// browsers' limit (V8, SpiderMonkey) is the same.
	maxFunctionLocals = 50000
	// localsPerByte bounds the locals of all functions together by the
	// module's size: every local costs wazero memory when it decodes the
	// module, and locals declared in runs (count, type) cost the module two bytes.
	localsPerByte = 16
)

// sanitizeModule checks, before wazero sees a module, every count and size
// that wazero allocates memory for before it reads what they announce, and
// returns the module without its custom sections (names, debug information,
// producer notes: nothing a run needs). wazero trusts those numbers: 15 bytes
// declaring an export section of a billion entries made it allocate tens of
// GiB and kill the node (found by FuzzCompile), and a custom section, a
// name, a data segment or a function's locals can each claim 4 GiB in a few
// bytes. Here every vector's count must fit in the bytes that remain of its
// section, every size in the bytes that remain, and locals are bounded.
func sanitizeModule(bin []byte) ([]byte, error) {
	if len(bin) < 8 {
		return nil, errBadBinary
	}
	out := make([]byte, 0, len(bin))
	out = append(out, bin[:8]...)
	r := reader{b: bin[8:]}
	var locals uint64
	for len(r.b) > 0 {
		start := len(bin) - len(r.b)
		id := r.byte()
		size := r.uleb()
		if r.err != nil || size > uint64(len(r.b)) {
			return nil, fmt.Errorf("%w: section %d at byte %d is larger than the module", errBadBinary, id, start)
		}
		body := reader{b: r.b[:size]}
		r.b = r.b[size:]
		end := len(bin) - len(r.b)
		if id == 0 {
			continue // custom section: dropped
		}
		if id == 4 { // tables: rewritten with a maximum
			tables, err := capTables(body.b)
			if errors.Is(err, errTooLarge) {
				return nil, err
			} else if err != nil {
				return nil, fmt.Errorf("%w: section %d at byte %d: %v", errBadBinary, id, start, err)
			}
			out = append(out, id)
			out = binary.AppendUvarint(out, uint64(len(tables)))
			out = append(out, tables...)
			continue
		}
		if err := checkSection(id, &body, &locals, len(bin)); err != nil {
			return nil, fmt.Errorf("%w: section %d at byte %d: %v", errBadBinary, id, start, err)
		}
		out = append(out, bin[start:end]...)
	}
	return out, nil
}

func checkSection(id byte, r *reader, locals *uint64, moduleSize int) error {
	n, err := r.count()
	if err != nil {
		return err
	}
	switch id {
	case 1: // types
		for range n {
			if form := r.byte(); form != 0x60 {
				return fmt.Errorf("type form %#x is not a function type", form)
			}
			for range 2 { // parameters, results
				k, err := r.count()
				if err != nil {
					return err
				}
				for range k {
					r.valtype()
				}
			}
		}
	case 2: // imports
		for range n {
			r.name()
			r.name()
			switch kind := r.byte(); kind {
			case 0:
				r.uleb()
			case 1:
				r.valtype()
				r.limits()
			case 2:
				r.limits()
			case 3:
				r.valtype()
				r.byte()
			case 4:
				r.byte()
				r.uleb()
			default:
				return fmt.Errorf("import kind %#x", kind)
			}
		}
	case 7: // exports
		for range n {
			r.name()
			r.byte()
			r.uleb()
		}
	case 9: // elements
		for range n {
			if err := r.element(); err != nil {
				return err
			}
		}
	case 10: // code
		for range n {
			size := r.uleb()
			if r.err != nil || size > uint64(len(r.b)) {
				return errors.New("function body larger than its section")
			}
			body := reader{b: r.b[:size]}
			r.b = r.b[size:]
			entries, err := body.count()
			if err != nil {
				return err
			}
			var fn uint64
			for range entries {
				fn += body.uleb()
				body.valtype()
				if fn > maxFunctionLocals {
					return fmt.Errorf("a function declares more than %d locals", maxFunctionLocals)
				}
			}
			if body.err != nil {
				return body.err
			}
			if *locals += fn; *locals > localsPerByte*uint64(moduleSize)+maxFunctionLocals {
				return fmt.Errorf("the functions declare more than %d locals in all", localsPerByte*moduleSize+maxFunctionLocals)
			}
		}
	case 11: // data
		for range n {
			switch flags := r.uleb(); flags {
			case 0:
				r.constExpr()
			case 1:
			case 2:
				r.uleb()
				r.constExpr()
			default:
				return fmt.Errorf("data segment flags %#x", flags)
			}
			r.bytes()
		}
	}
	// Other sections hold n small fixed-size entries; that n fits in the
	// section (count) is what bounds wazero's allocation.
	return r.err
}

// count reads a vector's length, which must not exceed the bytes left:
// every entry takes at least one.
func (r *reader) count() (uint64, error) {
	n := r.uleb()
	if r.err != nil {
		return 0, r.err
	}
	if n > uint64(len(r.b)) {
		return 0, fmt.Errorf("a vector of %d entries in %d bytes", n, len(r.b))
	}
	return n, nil
}

// bytes skips a length-prefixed byte string (a name, a data segment).
func (r *reader) bytes() {
	n := r.uleb()
	if r.err != nil {
		return
	}
	if n > uint64(len(r.b)) {
		r.err = errBadBinary
		return
	}
	r.b = r.b[n:]
}

func (r *reader) name() { r.bytes() }

// skip drops n bytes.
func (r *reader) skip(n int) {
	if len(r.b) < n {
		r.err = errBadBinary
		return
	}
	r.b = r.b[n:]
}

// sleb skips a signed LEB128 number.
func (r *reader) sleb() {
	for range 10 {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.err = errBadBinary
}

// valtype skips a value type; the reference types (ref null ht) carry a heap type.
func (r *reader) valtype() {
	if t := r.byte(); t == 0x63 || t == 0x64 {
		r.sleb()
	}
}

// limits skips a table's or memory's limits.
func (r *reader) limits() {
	flags := r.byte()
	r.uleb()
	if flags&1 != 0 {
		r.uleb()
	}
}

// constExpr skips a constant expression up to its end opcode.
func (r *reader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case 0x0b: // end
			return
		case 0x41, 0x42, 0xd0: // i32.const, i64.const, ref.null
			r.sleb()
		case 0x43: // f32.const
			r.skip(4)
		case 0x44: // f64.const
			r.skip(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.uleb()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constants: add, sub, mul
		case 0xfd: // v128.const
			if r.uleb() != 12 {
				r.err = errBadBinary
				return
			}
			r.skip(16)
		default:
			if r.err == nil {
				r.err = fmt.Errorf("%w: instruction %#x in a constant expression", errBadBinary, op)
			}
			return
		}
	}
}

// element skips an element segment (its eight encodings), checking its
// vector's count.
func (r *reader) element() error {
	flags := r.uleb()
	if flags > 7 {
		return fmt.Errorf("element segment flags %#x", flags)
	}
	if flags&2 != 0 && flags&1 == 0 { // explicit table index (2, 6)
		r.uleb()
	}
	if flags&1 == 0 { // active: offset
		r.constExpr()
	}
	if flags&3 != 0 { // element kind (1-3) or reference type (5-7)
		if flags&4 != 0 {
			r.valtype()
		} else {
			r.byte()
		}
	}
	n, err := r.count()
	if err != nil {
		return err
	}
	for range n {
		if flags&4 != 0 {
			r.constExpr()
		} else {
			r.uleb()
		}
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// maxTableEntries bounds each table a module defines. wazero allocates a
// table's minimum at instantiation and every table.grow at once, outside the
// memory limit (8 bytes an entry): without a bound, 20 bytes of module ask
// for 1 GiB, and one table.grow instruction for 32 GiB. Compilers size the
// function table to the program (a large Go program needs tens of
// thousands of entries); Go declares no maximum, so sanitizeModule gives
// every table this one, which makes a larger table.grow fail (-1), as the
// specification allows any grow to.
const maxTableEntries = 1 << 20

// errTooLarge marks a valid module that asks for more than the sandbox gives.
var errTooLarge = errors.New("over the sandbox's limits")

// capTables returns a table section in which every table has a maximum of
// at most maxTableEntries, or errTooLarge if one starts above it.
func capTables(body []byte) ([]byte, error) {
	r := reader{b: body}
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	out := binary.AppendUvarint(nil, n)
	for i := range n {
		start := len(body) - len(r.b)
		if len(r.b) > 0 && r.b[0] == 0x40 { // 0x40 0x00 tabletype expr
			r.skip(2)
		}
		r.valtype()
		out = append(out, body[start:len(body)-len(r.b)]...)
		flags := r.byte()
		lo, hi := r.uleb(), uint64(maxTableEntries)
		if flags&1 != 0 {
			hi = min(r.uleb(), hi)
		}
		if r.err != nil {
			return nil, r.err
		}
		if lo > maxTableEntries {
			return nil, fmt.Errorf("%w: table %d starts with %d entries; the limit is %d", errTooLarge, i, lo, maxTableEntries)
		}
		out = append(out, flags|1)
		out = binary.AppendUvarint(out, lo)
		out = binary.AppendUvarint(out, hi)
		if body[start] == 0x40 {
			exprStart := len(body) - len(r.b)
			r.constExpr()
			out = append(out, body[exprStart:len(body)-len(r.b)]...)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, errors.New("bytes after the last table")
	}
	return out, nil
}
