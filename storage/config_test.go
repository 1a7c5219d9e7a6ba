package storage

import (
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

// The documented [storage] section parses strictly into DefaultConfig.
func TestExampleTOMLIsDefault(t *testing.T) {
	var file struct {
		Storage Config `toml:"storage"`
	}
	md, err := toml.DecodeFile("testdata/storage.example.toml", &file)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("unknown keys in the example: %v", u)
	}
	if !reflect.DeepEqual(file.Storage, DefaultConfig()) {
		t.Fatalf("example = %+v\nwant     %+v", file.Storage, DefaultConfig())
	}
	// Every field has a key in the example.
	keys := map[string]bool{}
	for _, k := range md.Keys() {
		if len(k) == 2 {
			keys[k[1]] = true
		}
	}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		if tag := typ.Field(i).Tag.Get("toml"); !keys[tag] {
			t.Errorf("storage.%s is not documented in the example", tag)
		}
	}
}
