package chain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gagliardetto/solana-go"
)

func TestAirdropAndBalance(t *testing.T) {
	c, key := newClient(t, nil)
	if c.Address().String() != key.WalletAddress() {
		t.Fatalf("Address() = %s, want the identity's wallet %s", c.Address(), key.WalletAddress())
	}
	if got, err := c.Balance(t.Context()); err != nil || got != 0 {
		t.Fatalf("new wallet balance = %d, %v; want 0", got, err)
	}
	if _, err := c.Airdrop(t.Context(), 2*sol); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Balance(t.Context()); err != nil || got != 2*sol {
		t.Fatalf("balance = %d, %v; want %d", got, err, 2*sol)
	}
	// No token account yet: zero, not an error.
	if got, err := c.TokenBalance(t.Context(), newKey(t).PublicKey(), c.Address()); err != nil || got != 0 {
		t.Fatalf("TokenBalance without an account = %d, %v; want 0, nil", got, err)
	}
}

func writeKeypair(t *testing.T, k solana.PrivateKey, mode os.FileMode) string {
	t.Helper()
	var ints []string
	for _, b := range k {
		ints = append(ints, fmt.Sprint(b))
	}
	path := filepath.Join(t.TempDir(), "id.json")
	if err := os.WriteFile(path, []byte("["+strings.Join(ints, ",")+"]"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKeypairFile(t *testing.T) {
	k := newKey(t)
	t.Run("0600 is used", func(t *testing.T) {
		cfg := testConfig()
		cfg.Keypair = writeKeypair(t, k, 0o600)
		fee := newKey(t)
		cfg.FeePayer = writeKeypair(t, fee, 0o400)
		c, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.Address() != k.PublicKey() || c.FeePayer() != fee.PublicKey() {
			t.Fatalf("wallet %s fee payer %s, want %s %s", c.Address(), c.FeePayer(), k.PublicKey(), fee.PublicKey())
		}
	})
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		t.Run(fmt.Sprintf("%04o refused", mode), func(t *testing.T) {
			cfg := testConfig()
			cfg.Keypair = writeKeypair(t, k, mode)
			_, err := New(cfg, nil, nil)
			if !errors.Is(err, ErrInsecureKeypair) || !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("New() = %v, want ErrInsecureKeypair telling to chmod 600", err)
			}
		})
	}
	t.Run("corrupt", func(t *testing.T) {
		bad := append(solana.PrivateKey(nil), k...)
		bad[40] ^= 1 // public half no longer matches the seed
		cfg := testConfig()
		cfg.Keypair = writeKeypair(t, bad, 0o600)
		if _, err := New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("New() = %v, want a mismatch error", err)
		}
	})
}

// closedPort returns a loopback URL nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestRPCUnreachable(t *testing.T) {
	url := closedPort(t)
	c, _ := newClient(t, func(cfg *Config) { cfg.RPC, cfg.MaxRetries = url, 3 })
	_, err := c.Balance(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "4 attempts") {
		t.Fatalf("Balance() = %v, want ErrUnreachable naming %s after 4 attempts", err, url)
	}
}

// The devnet's token: a new mint with the wallet as authority, its supply
// in the wallet, and more minted to another owner whose account is made.
func TestCreateMintAndMintTo(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t, nil)
	airdrop(t, c, 2*sol)
	mint, _, err := c.CreateMint(ctx, 6, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.TokenBalance(ctx, mint, c.Address()); err != nil || got != 1_000_000 {
		t.Fatalf("wallet holds %d, %v; want 1000000", got, err)
	}
	owner := newKey(t).PublicKey()
	// Different amounts: two identical calls within one blockhash's life
	// are the same transaction, which the chain runs once.
	for _, amount := range []uint64{250, 300} { // the second time the account exists
		if _, err := c.MintTo(ctx, mint, owner, amount); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.TokenBalance(ctx, mint, owner); err != nil || got != 550 {
		t.Fatalf("owner holds %d, %v; want 550", got, err)
	}
}
