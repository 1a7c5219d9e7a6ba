package config

import (
	"bytes"
	"os"
	"testing"
)

// A config file either fails to load with an error, or loads into a config
// that `vft config show` prints as a file that loads back to the same
// config: what the daemon runs with is what the operator sees.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"../node.example.toml", "../storage/testdata/storage.example.toml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, m := range []Mode{ModeMiner, ModeLight, ModeEdge} {
		data, err := Default(m).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[node]\nmode = \"edge\"\n[api]\nlisten = \"0.0.0.0:5801\"\n"))
	f.Add([]byte("[node]\nmode = \"light\"\nbogus = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.toml")
		if err != nil || cfg.Validate() != nil {
			return
		}
		enc, err := cfg.Encode()
		if err != nil {
			t.Fatalf("a loaded config does not encode: %v\n%s", err, data)
		}
		again, err := Parse(enc, "again.toml")
		if err != nil {
			t.Fatalf("the encoded config does not load: %v\n%s", err, enc)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("the encoded config does not validate: %v\n%s", err, enc)
		}
		enc2, err := again.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("the config changed on a round trip:\n%s\n---\n%s", enc, enc2)
		}
	})
}

// `vft config set KEY VALUE` and VFT_* variables: a value Set accepts is
// read back by Get in a form Set accepts again, and the file it makes
// loads with the same value.
func FuzzSet(f *testing.F) {
	keys := Keys()
	cfg := Default(ModeMiner)
	for i, k := range keys {
		v, err := cfg.Get(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(i), v)
	}
	f.Add(uint16(0), "-1s")
	f.Add(uint16(1), "9999999999999999999999")
	f.Fuzz(func(t *testing.T, i uint16, value string) {
		key := keys[int(i)%len(keys)]
		c := Default(ModeMiner)
		if err := c.Set(key, value); err != nil {
			return
		}
		got, err := c.Get(key)
		if err != nil {
			t.Fatalf("Get(%s) after Set(%q): %v", key, value, err)
		}
		c2 := Default(ModeMiner)
		if err := c2.Set(key, got); err != nil {
			t.Fatalf("Set(%s, %q) accepted, but not what Get printed, %q: %v", key, value, got, err)
		}
		if again, _ := c2.Get(key); again != got {
			t.Fatalf("%s: %q reads as %q, then as %q", key, value, got, again)
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatalf("Set(%s, %q): the config does not encode: %v", key, value, err)
		}
		loaded, err := Parse(enc, "config.toml")
		if err != nil {
			t.Fatalf("Set(%s, %q): the file written does not load: %v\n%s", key, value, err, enc)
		}
		if back, _ := loaded.Get(key); back != got {
			t.Fatalf("Set(%s, %q): the file written loads it as %q, not %q", key, value, back, got)
		}
	})
}
