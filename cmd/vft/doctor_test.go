package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/chain/localnet"
	"github.com/vft-network/vft/hwdetect"
	"github.com/vft-network/vft/p2p"
)

// `vft doctor` on a node that settles asks the chain: does its RPC answer,
// can the wallet pay fees (and how to fund it). On a light node (a
// submitter) the miner-only checks are information, not warnings.
func TestDoctorChainAndLightNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lnet, err := localnet.Start(ctx, localnet.Options{})
	if err != nil {
		t.Fatalf("this test needs the localnet (npm ci --prefix chain/localnet): %v", err)
	}
	defer lnet.Close()
	env := testEnv("VFT_CHAIN_SETTLE=true", "VFT_CHAIN_RPC="+lnet.RPCURL(), "VFT_CHAIN_WS="+lnet.WSURL())

	light := initRepo(t, env, "light")
	out, _, code := vft(t, env, "--repo", light, "doctor")
	if code == 0 {
		t.Errorf("doctor passed a submitter whose wallet is empty:\n%s", out)
	}
	for _, want := range [][3]string{
		{"OK", "chain rpc", lnet.RPCURL() + " answers"},
		{"FAIL", "wallet funds", "→ `vft wallet airdrop 1`"},
		{"INFO", "nvml", "not needed on a light node"},
		{"INFO", "gpus visible", "not needed on a light node"},
		{"INFO", "bwrap present", "not needed on a light node"},
	} {
		if !hasCheck(out, want[0], want[1], want[2]) {
			t.Errorf("doctor on a light node with an empty wallet lacks %s %s %q:\n%s", want[0], want[1], want[2], out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "WARN") && (strings.Contains(line, "nvml") || strings.Contains(line, "gpus visible") || strings.Contains(line, "bwrap")) {
			t.Errorf("doctor warns a light node about a miner's needs: %s", line)
		}
	}
	if _, stderr, code := vft(t, env, "--repo", light, "wallet", "airdrop", "1"); code != 0 {
		t.Fatalf("airdrop: %s", stderr)
	}
	out, _, _ = vft(t, env, "--repo", light, "doctor")
	if !hasCheck(out, "OK", "wallet funds", "1 SOL at ") {
		t.Errorf("doctor after an airdrop of 1 SOL:\n%s", out)
	}

	// A miner whose chain does not answer: a failure naming the RPC.
	const dead = "http://127.0.0.1:9"
	deadEnv := testEnv("VFT_CHAIN_SETTLE=true", "VFT_CHAIN_RPC="+dead, "VFT_CHAIN_WS=ws://127.0.0.1:9")
	miner := initRepo(t, deadEnv, "miner")
	out, _, code = vft(t, deadEnv, "--repo", miner, "doctor")
	if code == 0 || !hasCheck(out, "FAIL", "chain rpc", dead+" does not answer") || !strings.Contains(out, "bwrap present") {
		t.Errorf("doctor on a miner whose chain is down: exit %d:\n%s", code, out)
	}
	if strings.Contains(out, "not needed on a light node") {
		t.Errorf("doctor treats a miner as a light node:\n%s", out)
	}
}

// hasCheck says whether doctor's output has a line of that severity and
// check name whose detail (or fix) contains part.
func hasCheck(out, severity, name, part string) bool {
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == severity && strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(line, severity)), name+"  ") && strings.Contains(line, part) {
			return true
		}
	}
	return false
}

// The reachability line: public is fine; private warns with the fix,
// naming the relays that keep the node reachable; unknown asks to wait.
func TestReachabilityCheck(t *testing.T) {
	cases := []struct {
		name     string
		in       api.Reachability
		severity hwdetect.Severity
		want     []string
	}{
		{"public", api.Reachability{Reachability: p2p.Reachability{Status: "public", Reachable: []string{"/ip4/1.2.3.4/tcp/4101"}}},
			hwdetect.SeverityOK, []string{"public", "/ip4/1.2.3.4/tcp/4101"}},
		{"private with a relay", api.Reachability{Reachability: p2p.Reachability{Status: "private", Relays: []string{"12D3KooWrelay"}, Unreachable: []string{"/ip4/1.2.3.4/tcp/4101"}}},
			hwdetect.SeverityWarn, []string{"through 1 relay", "12D3KooWrelay", "not reachable at /ip4/1.2.3.4/tcp/4101", "forward TCP and UDP 4101"}},
		{"private without a relay", api.Reachability{Reachability: p2p.Reachability{Status: "private", NAT: map[string]string{"tcp": "endpoint-dependent"}}},
			hwdetect.SeverityWarn, []string{"no relay reservation", "tcp endpoint-dependent", "enable UPnP on the router"}},
		{"unknown", api.Reachability{Reachability: p2p.Reachability{Status: "unknown"}}, hwdetect.SeverityWarn, []string{"no peer has checked yet", "again in a few minutes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := reachabilityCheck(tc.in)
			line := ch.Detail + " → " + ch.Fix
			if ch.Severity != tc.severity {
				t.Errorf("severity %s, want %s: %s", ch.Severity, tc.severity, line)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q lacks %q", line, w)
				}
			}
		})
	}
}
