package repo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vft-network/vft/config"
)

func TestInitCreatesPrivateRepo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	r, key, err := Init(dir, config.Default(config.ModeLight))
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{IdentityFile: 0o600, TokenFile: 0o600, ConfigFile: 0o600} {
		info, err := os.Stat(r.Path(name))
		if err != nil {
			t.Fatalf("%s missing: %v", name, err)
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s mode %04o, want %04o", name, info.Mode().Perm(), mode)
		}
	}
	loaded, err := r.Identity()
	if err != nil || loaded.PeerID() != key.PeerID() {
		t.Fatalf("identity reload: %v", err)
	}
	cfg, err := r.Config(nil)
	if err != nil || cfg.Node.Mode != config.ModeLight {
		t.Fatalf("config reload: mode %s, %v", cfg.Node.Mode, err)
	}
	token, err := r.APIToken()
	if err != nil || len(token) != 64 {
		t.Fatalf("token %q, %v", token, err)
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	_, key, err := Init(dir, config.Default(config.ModeMiner))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Init(dir, config.Default(config.ModeMiner))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Init = %v, want ErrExists", err)
	}
	r, _ := Open(dir)
	again, err := r.Identity()
	if err != nil || again.PeerID() != key.PeerID() {
		t.Fatalf("identity changed after a refused init")
	}
}

// A failed init leaves nothing behind, so the next attempt starts clean.
func TestInitLeavesNothingOnFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	bad := config.Default(config.ModeMiner)
	bad.API.Listen = "0.0.0.0:1"
	if _, _, err := Init(dir, bad); err == nil {
		t.Fatal("Init accepted a bad config")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed Init left %s behind", dir)
	}
	// A failure in the middle: the token file is already there.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TokenFile), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Init(dir, config.Default(config.ModeMiner)); err == nil {
		t.Fatal("Init succeeded over a conflicting token file")
	}
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("failed Init left identity.key behind")
	}
}

func TestOpenUninitialised(t *testing.T) {
	_, err := Open(t.TempDir())
	if !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("Open = %v, want ErrNotInitialised", err)
	}
}

func TestLockIsExclusive(t *testing.T) {
	r, _, err := Init(t.TempDir(), config.Default(config.ModeMiner))
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := r.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock = %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := r.Lock()
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}

func TestAPIAddrFile(t *testing.T) {
	r, _, err := Init(t.TempDir(), config.Default(config.ModeMiner))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.APIAddr(); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("APIAddr with no daemon = %v, want ErrNoDaemon", err)
	}
	if err := r.WriteAPIAddr("127.0.0.1:4321"); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.APIAddr(); got != "127.0.0.1:4321" {
		t.Fatalf("APIAddr = %q", got)
	}
	if err := r.RemoveAPIAddr(); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	env := func(v string) func(string) string { return func(string) string { return v } }
	if got, _ := Resolve("/a", env("/b")); got != "/a" {
		t.Errorf("flag should win, got %s", got)
	}
	if got, _ := Resolve("", env("/b")); got != "/b" {
		t.Errorf("$VFT_PATH should be used, got %s", got)
	}
	home, _ := os.UserHomeDir()
	if got, _ := Resolve("", env("")); got != filepath.Join(home, ".vft") {
		t.Errorf("default should be ~/.vft, got %s", got)
	}
}

// The API token drives the node and its wallet: a token file that group or
// others can read is refused, like identity.key, rather than used.
func TestAPITokenRefusedWhenOthersCanRead(t *testing.T) {
	r, _, err := Init(filepath.Join(t.TempDir(), "node"), config.Default(config.ModeMiner))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(r.Path(TokenFile), mode); err != nil {
			t.Fatal(err)
		}
		_, err := r.APIToken()
		if !errors.Is(err, ErrInsecureToken) || !strings.Contains(err.Error(), r.Path(TokenFile)) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %04o: APIToken = %v, want ErrInsecureToken naming the file and the fix", mode, err)
		}
	}
	if err := os.Chmod(r.Path(TokenFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.APIToken(); err != nil {
		t.Fatalf("mode 0600: %v", err)
	}
}
