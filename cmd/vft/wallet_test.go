package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/chain/localnet"
)

// `vft wallet` against the real local Solana runtime: the address is the
// peer's key, an airdrop lands, the balance shows it.
func TestWalletOnLocalnet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := localnet.Start(ctx, localnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	env := testEnv("VFT_CHAIN_RPC="+ln.RPCURL(), "VFT_CHAIN_WS="+ln.WSURL())
	repoDir := initRepo(t, env, "light")

	out, _, code := vft(t, env, "--repo", repoDir, "id", "--json")
	var id struct{ Wallet string }
	json.Unmarshal([]byte(out), &id)
	addr, _, _ := vft(t, env, "--repo", repoDir, "wallet")
	if code != 0 || strings.TrimSpace(addr) != id.Wallet || id.Wallet == "" {
		t.Fatalf("wallet address %q, id wallet %q", addr, id.Wallet)
	}
	if _, stderr, code := vft(t, env, "--repo", repoDir, "wallet", "airdrop", "2.5"); code != 0 {
		t.Fatalf("airdrop: %s", stderr)
	}
	out, stderr, code := vft(t, env, "--repo", repoDir, "wallet", "balance", "--json")
	var bal struct{ Lamports uint64 }
	if err := json.Unmarshal([]byte(out), &bal); err != nil || code != 0 || bal.Lamports != 2_500_000_000 {
		t.Fatalf("balance %s %s: want 2.5 SOL", out, stderr)
	}
	_, stderr, code = vft(t, env, "--repo", repoDir, "wallet", "airdrop", "lots")
	if code == 0 || !strings.Contains(stderr, `"lots"`) {
		t.Fatalf("bad amount: %s", stderr)
	}
	_, stderr, code = vft(t, testEnv("VFT_CHAIN_RPC=http://127.0.0.1:9", "VFT_CHAIN_MAX_RETRIES=1"), "--repo", repoDir, "wallet", "balance")
	if code == 0 || !strings.Contains(stderr, "127.0.0.1:9") {
		t.Fatalf("unreachable RPC: %s", stderr)
	}
}

func TestParseSOL(t *testing.T) {
	for in, want := range map[string]uint64{"2": 2e9, "0.5": 5e8, "0.000000001": 1} {
		if got, err := parseSOL(in); err != nil || got != want {
			t.Errorf("parseSOL(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "-1", "0.0000000001", "x"} {
		if _, err := parseSOL(bad); err == nil {
			t.Errorf("parseSOL(%q) accepted", bad)
		}
	}
	if formatSOL(2_500_000_000) != "2.5" || formatSOL(3e9) != "3" {
		t.Error("formatSOL")
	}
}
