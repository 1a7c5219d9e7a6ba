package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFixtures creates the inputs whose kubo CIDs TestKuboFixtureCIDs
// pins. They are generated rather than committed (a few MiB); running
//
//	VFT_WRITE_FIXTURES=/tmp/fx go test ./storage/ -run TestWriteFixtures
//
// writes them so `ipfs add` can be run on the same bytes.
func writeFixtures(t testing.TB, dir string) {
	t.Helper()
	put := func(rel string, data []byte) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("hello.txt", []byte("hello world\n"))
	put("multi.bin", randomBytes(3<<20+5, 42))
	put("wide.bin", randomBytes(1100*1024+7, 43))
	put("dir/a.txt", []byte("alpha\n"))
	put("dir/.hidden", []byte("skipped unless include_hidden\n"))
	put("dir/sub/b.bin", randomBytes(600_000, 44))
	put("dir/sub/deeper/c.txt", []byte("gamma\n"))
	if err := os.MkdirAll(filepath.Join(dir, "dir/empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/b.bin", filepath.Join(dir, "dir/link")); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 170)
	for i := range 1200 {
		put(fmt.Sprintf("bigdir/%s-%04d", pad, i), []byte(fmt.Sprintln(i)))
	}
}

func TestWriteFixtures(t *testing.T) {
	dir := os.Getenv("VFT_WRITE_FIXTURES")
	if dir == "" {
		t.Skip("set VFT_WRITE_FIXTURES=DIR to write the kubo fixtures")
	}
	writeFixtures(t, dir)
}

// TestKuboFixtureCIDs checks Add against CIDs printed by kubo v0.43.1
// (`ipfs add -Q -n [-r] [--hidden] [--chunker C]`), built from source,
// once in a repo with the default config (CIDv0, the classic settings)
// and once in one made with `ipfs init --profile unixfs-v1-2025`.
func TestKuboFixtureCIDs(t *testing.T) {
	dir := t.TempDir()
	writeFixtures(t, dir)
	v0, v1 := LegacyConfig(), DefaultConfig()
	with := func(c Config, f func(*Config)) Config { f(&c); return c }
	chunker := func(s string) func(*Config) { return func(c *Config) { c.Chunker = s } }
	hidden := func(c *Config) { c.IncludeHidden = true }
	tests := []struct {
		path string
		cfg  Config
		want string
	}{
		{"hello.txt", v0, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"},
		{"multi.bin", v0, "QmUdbWBHJ7jDGWnLjzYTFy7of7UtjzE2q5aev56ff476G5"},
		{"wide.bin", with(v0, chunker("size-1024")), "QmaZSQk5MT336LkUWQjk1JKaAJmYYnTmZ92hxVNMRbKVWd"},
		{"multi.bin", with(v0, chunker("rabin-16384-65536-131072")), "QmXs3JEqgHj2iERN8bv9N9JKNac1txsYR5AZBtUosGeK6B"},
		{"dir", v0, "QmcAbvr217kUGpTUoCuXfCf2UxPUDrmXu4k8aUGv8aUnPK"},
		{"dir", with(v0, hidden), "QmeXdZy2JayRVXRuMXmAow6S1FUKbN8XndFz9FVDVFyUF1"},
		{"bigdir", v0, "QmTWF5kP4nq4Ppc46npNs6Rq7eRD8dWgTRnamjBxVwYv5M"},
		{"hello.txt", v1, "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"},
		{"multi.bin", v1, "bafybeigo7sxrayu5nvzfsct353yhji7lop4ryb6baetrumxzdd5onj2qym"},
		{"wide.bin", with(v1, chunker("size-1024")), "bafybeicettun7u2dfthctwi77vc724rcfsoboariydeuzywtstgtkjf56q"},
		{"multi.bin", with(v1, chunker("rabin-16384-65536-131072")), "bafybeifocb4q7wfjjevy4kqcofso4mqcw5ctb6pafditmvxdeaur33gnkq"},
		{"dir", v1, "bafybeia7rqwtmp5nhizr6wgft7htxysnetlxhc3gox5laxsivo5xwsebaq"},
		{"dir", with(v1, hidden), "bafybeibp3es5qbqn65mjdzgkwv3g3ya6hofris3eew74a5l6tmq32i4som"},
		{"bigdir", v1, "bafybeicmdyi467ljyrigncvacnqoew3n6pnfppp4cxhxcp27nhjlui2j7y"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s cidv%d %s hidden=%v", tt.path, tt.cfg.CIDVersion, tt.cfg.Chunker, tt.cfg.IncludeHidden)
		t.Run(name, func(t *testing.T) {
			s := newStore(t, tt.cfg, nil, nil)
			c, err := s.Add(t.Context(), filepath.Join(dir, tt.path), AddOptions{NoPin: true})
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != tt.want {
				t.Fatalf("CID = %s, kubo gives %s", c, tt.want)
			}
		})
	}
}
