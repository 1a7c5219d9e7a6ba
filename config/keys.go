package config

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// EnvPrefix starts every environment variable that sets a config key:
// p2p.conn_low is VFT_P2P_CONN_LOW.
const EnvPrefix = "VFT_"

// Keys lists every settable key as "section.key", sorted.
func Keys() []string {
	var keys []string
	walk(reflect.TypeOf(Config{}), "", func(path string) { keys = append(keys, path) })
	sort.Strings(keys)
	return keys
}

// EnvName is the environment variable for a key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func walk(t reflect.Type, prefix string, visit func(string)) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		ft := f.Type
		if isLeaf(ft) {
			visit(path)
			continue
		}
		// Optional tables (pointers, like [hardware.override]) are written
		// in the file only; they have no environment variables.
		if ft.Kind() == reflect.Struct {
			walk(ft, path, visit)
		}
	}
}

func tomlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := strings.Split(f.Tag.Get("toml"), ",")[0]
	if tag == "-" || tag == "" {
		return ""
	}
	return tag
}

var (
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	durationType    = reflect.TypeOf(time.Duration(0))
)

// isLeaf is true for values a single string can set.
func isLeaf(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// Set changes one key from its string form, as `vft config set` and the
// environment give it. Lists are comma-separated.
func (c *Config) Set(key, value string) error {
	v, err := c.field(key)
	if err != nil {
		return err
	}
	if err := setValue(v, value); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// Get returns one key's value in the form Set accepts.
func (c *Config) Get(key string) (string, error) {
	v, err := c.field(key)
	if err != nil {
		return "", err
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, err := m.MarshalText()
		return string(b), err
	}
	if v.Type() == durationType {
		return time.Duration(v.Int()).String(), nil
	}
	if v.Kind() == reflect.Slice {
		return strings.Join(v.Interface().([]string), ","), nil
	}
	return fmt.Sprint(v.Interface()), nil
}

func (c *Config) field(key string) (reflect.Value, error) {
	v := reflect.ValueOf(c).Elem()
	parts := strings.Split(key, ".")
	for i, part := range parts {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, fmt.Errorf("%w %q: `vft config show` lists every key", ErrUnknownKey, key)
		}
		found := false
		for j := range v.NumField() {
			if tomlName(v.Type().Field(j)) == part {
				v = v.Field(j)
				found = true
				break
			}
		}
		if !found {
			return reflect.Value{}, fmt.Errorf("%w %q: `vft config show` lists every key", ErrUnknownKey, key)
		}
		if i == len(parts)-1 && !isLeaf(v.Type()) {
			return reflect.Value{}, fmt.Errorf("%q is a section, not a key: name one of its keys, like %s.<key>", key, key)
		}
	}
	return v, nil
}

func setValue(v reflect.Value, raw string) error {
	// A TOML file holds UTF-8 only: a value that is not would be written
	// by `vft config set` into a config.toml the daemon then cannot load.
	if !utf8.ValidString(raw) {
		return fmt.Errorf("%q is not valid UTF-8 text", raw)
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(raw))
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration: write it like 30s, 5m or 1h", raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(raw, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		n, err := strconv.ParseUint(raw, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a non-negative whole number", raw)
		}
		v.SetUint(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		v.SetFloat(f)
	case reflect.Slice:
		items := []string{}
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from text")
	}
	return nil
}

// ApplyEnv sets every key that has a VFT_<SECTION>_<KEY> variable in
// environ (os.Environ's form). Other VFT_ variables (VFT_PATH, say) are
// not config keys and are left alone.
func (c *Config) ApplyEnv(environ []string) error {
	byEnv := map[string]string{}
	for _, k := range Keys() {
		byEnv[EnvName(k)] = k
	}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key, ok := byEnv[name]
		if !ok {
			continue
		}
		if err := c.Set(key, value); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
	}
	return nil
}

// ApplyOverrides sets "key=value" pairs given on the command line.
func (c *Config) ApplyOverrides(pairs []string) error {
	for _, p := range pairs {
		key, value, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("override %q is not key=value, like p2p.mdns=false", p)
		}
		if err := c.Set(strings.TrimSpace(key), value); err != nil {
			return err
		}
	}
	return nil
}
