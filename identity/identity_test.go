package identity

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	key, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Save(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %04o, want 0600", info.Mode().Perm())
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.PeerID() != key.PeerID() {
		t.Fatalf("peer ID changed across save/load: %s vs %s", loaded.PeerID(), key.PeerID())
	}
	if loaded.WalletAddress() != key.WalletAddress() {
		t.Fatalf("wallet changed across save/load")
	}
	if err := key.Save(path); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Save = %v, want already exists", err)
	}
}

// The peer ID and the wallet are the same public key: a peer met on the
// network can be paid without asking it for an address.
func TestWalletAddressOfPeerMatchesOwnWallet(t *testing.T) {
	key, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := WalletAddressOf(key.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if addr != key.WalletAddress() {
		t.Fatalf("WalletAddressOf(peer) = %s, want %s", addr, key.WalletAddress())
	}
	if n := len(addr); n < 32 || n > 44 {
		t.Fatalf("Solana address %q has length %d, want 32..44 base58 chars", addr, n)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	good, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	goodPath := filepath.Join(t.TempDir(), "good.key")
	if err := good.Save(goodPath); err != nil {
		t.Fatal(err)
	}
	goodBytes, _ := os.ReadFile(goodPath)
	flipped := strings.Replace(string(goodBytes), "[", "[1,", 1) // 65 bytes
	tamperedPub := []byte(string(goodBytes))
	// Change the last number of the array (a public-key byte).
	s := string(tamperedPub)
	i := strings.LastIndex(s, ",")
	s = s[:i+1] + "0]"
	if s == string(goodBytes) {
		s = s[:i+1] + "1]"
	}

	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr error
	}{
		{"not json", "hello", 0o600, ErrCorrupt},
		{"wrong length", flipped, 0o600, ErrCorrupt},
		{"not bytes", "[" + strings.Repeat("300,", 63) + "300]", 0o600, ErrCorrupt},
		{"public key mismatch", s, 0o600, ErrCorrupt},
		{"world readable", string(goodBytes), 0o644, ErrInsecure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.key")
			if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Load = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

// A known vector: the all-zero seed's public key, as `solana-keygen` shows it.
func TestWalletAddressKnownVector(t *testing.T) {
	key, err := FromPrivateKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := key.WalletAddress(), "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS"; got != want {
		t.Fatalf("wallet = %s, want %s", got, want)
	}
}
