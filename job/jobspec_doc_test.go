package job

import (
	"encoding"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/JOBSPEC.md is the reference of the job spec file: every key that
// LoadFile accepts must be documented there, so a key added to FileSpec
// without a line of documentation fails here, naming it.
func TestJobSpecDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/JOBSPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := specKeys(reflect.TypeFor[FileSpec](), "")
	if len(keys) < 20 {
		t.Fatalf("found only %d keys in FileSpec (%v): the walk is broken", len(keys), keys)
	}
	if missing := undocumented(string(doc), keys); len(missing) > 0 {
		t.Fatalf("docs/JOBSPEC.md does not document the job spec key(s) %s: add each as the first cell of a table row (| `key` | type | default | limits | meaning |) or in a heading", strings.Join(missing, ", "))
	}
}

// The check itself: a key removed from the reference is reported, one
// mentioned only in prose is not enough, and nested tables are walked.
func TestUndocumentedKeys(t *testing.T) {
	type inner struct {
		Shape string `toml:"shape"`
	}
	type spec struct {
		Seed    uint64            `toml:"seed"`
		Env     map[string]string `toml:"env"`
		Volume  inner             `toml:"volume"`
		Runtime string            `toml:"-"`
		Deep    *inner            `toml:"deep"`
	}
	keys := specKeys(reflect.TypeFor[spec](), "")
	if want := []string{"seed", "env", "volume", "volume.shape", "deep", "deep.shape"}; !slices.Equal(keys, want) {
		t.Fatalf("specKeys = %v, want %v", keys, want)
	}
	full := "# Keys\n| `seed` | integer |\n| `env` | table |\n## `volume`\n| `shape` | string |\n## `deep`\n"
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"all documented", full, nil},
		{"a row removed", strings.Replace(full, "| `env` | table |\n", "", 1), []string{"env"}},
		{"only in prose", strings.Replace(full, "| `seed` | integer |\n", "The `seed` key seeds.\n", 1), []string{"seed"}},
		{"only in another key's row", strings.Replace(full, "| `seed` | integer |\n", "", 1) + "| `rng` | seeded by `seed` |\n", []string{"seed"}},
		{"a nested key removed", strings.Replace(full, "| `shape` | string |\n", "", 1), []string{"volume.shape", "deep.shape"}},
		{"a table heading removed", strings.Replace(full, "## `deep`\n", "", 1), []string{"deep"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := undocumented(tt.doc, keys); !slices.Equal(got, tt.want) {
				t.Fatalf("undocumented = %v, want %v", got, tt.want)
			}
		})
	}
}

// specKeys lists the TOML keys of a struct type, depth first: a nested
// struct is a table, listed by its name and then as "table.key" for each
// of its keys. Types that decode themselves from text (units.Duration,
// units.Bytes) are values, not tables.
func specKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		keys = append(keys, prefix+name)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		textValue := reflect.PointerTo(ft).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
		if ft.Kind() == reflect.Struct && !textValue {
			keys = append(keys, specKeys(ft, prefix+name+".")...)
		}
	}
	return keys
}

// undocumented returns the keys whose last part does not appear as `key`
// in the first cell of a table row or in a heading of doc.
func undocumented(doc string, keys []string) []string {
	documented := map[string]bool{}
	code := regexp.MustCompile("`([^`]+)`")
	for line := range strings.Lines(doc) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "|"):
			// Only the row's first cell: a key named in another key's
			// meaning is not documented by it.
			cells := strings.Split(line, "|")
			line = cells[1]
		default:
			continue
		}
		for _, m := range code.FindAllStringSubmatch(line, -1) {
			documented[m[1]] = true
		}
	}
	var missing []string
	for _, k := range keys {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !documented[leaf] {
			missing = append(missing, k)
		}
	}
	return missing
}
