package identity_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/identity"
)

// A key file in the Solana CLI format is read by two loaders: the node's
// identity.key (identity.Load) and a miner's chain.keypair
// (chain.LoadKeypair). Whatever the file holds, neither panics, both accept
// or both refuse it, and an accepted file gives the same key to both: a
// keypair that works as a wallet also works as the node's identity.
func FuzzKeyFile(f *testing.F) {
	k, err := identity.Generate()
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	if err := k.Save(filepath.Join(dir, "identity.key")); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "identity.key"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte("["), []byte("[ "), 1))
	f.Add([]byte("[" + strings.Repeat("0,", 63) + "0]"))
	f.Add([]byte("[" + strings.Repeat("300,", 63) + "300]"))
	f.Add([]byte("[1.5]"))
	f.Add([]byte(`{"key":[1,2]}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "key.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		id, idErr := identity.Load(path)
		wallet, chainErr := chain.LoadKeypair(path)
		if (idErr == nil) != (chainErr == nil) {
			t.Fatalf("%q: identity.Load says %v, chain.LoadKeypair says %v", data, idErr, chainErr)
		}
		if idErr != nil {
			if !strings.Contains(idErr.Error(), path) || !strings.Contains(chainErr.Error(), path) {
				t.Fatalf("errors do not name the file: %v / %v", idErr, chainErr)
			}
			return
		}
		if !bytes.Equal(id.PrivateKey(), wallet) || id.WalletAddress() != wallet.PublicKey().String() {
			t.Fatalf("%q: the two loaders read different keys", data)
		}
	})
}
