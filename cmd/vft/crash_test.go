package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/chain/localnet"
	"github.com/vft-network/vft/executor/wasm/wasmtest"
	"github.com/vft-network/vft/job"
)

// The submitter's daemon is killed (it exits, as a crash would) right
// after each step of paying a verified job: the intent written, the
// transaction sent, the transaction recorded done. Restarted on the same
// repo, it finishes the payment from its journal: the job ends done and
// the miner holds exactly one reward, never two.
func TestCrashMidSettlement(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lnet, err := localnet.Start(ctx, localnet.Options{SlotInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("this test needs the localnet (npm ci --prefix chain/localnet): %v", err)
	}
	defer lnet.Close()
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	const reward = 2_000_000 // lamports, above a new account's rent minimum
	for _, step := range chain.CrashSteps {
		t.Run(step, func(t *testing.T) {
			chainEnv := []string{"VFT_CHAIN_SETTLE=true", "VFT_CHAIN_RPC=" + lnet.RPCURL(), "VFT_CHAIN_WS=" + lnet.WSURL(),
				"VFT_CHAIN_POLL_INTERVAL=100ms", "VFT_HEARTBEAT_INTERVAL=5s"}
			env := testEnv(chainEnv...)
			miner := initRepo(t, env, "miner")
			startDaemon(t, miner, env)
			minerID, addrs := idOf(t, env, miner)
			viaMiner := testEnv(append(chainEnv, "VFT_P2P_BOOTSTRAP="+strings.Join(addrs, ","))...)
			submitter := initRepo(t, viaMiner, "light")
			if _, stderr, code := vft(t, viaMiner, "--repo", submitter, "wallet", "airdrop", "2"); code != 0 {
				t.Fatalf("airdrop: %s", stderr)
			}
			crashing := startDaemon(t, submitter, append(viaMiner, "VFT_DEBUG_CRASH_AT="+step, "VFT_DEBUG_ALLOW_FAULTS=true"))
			out, stderr, code := vft(t, viaMiner, "--repo", submitter, "job", "submit", "--wasm", module,
				"--input", "../../examples/wordcount/testdata/", "--redundancy", "1", "--verify", "exact",
				"--reward", "2000000", "--timeout", "1m")
			if code != 0 {
				t.Fatalf("submit: %s %s", out, stderr)
			}
			jobID := strings.TrimSpace(out)
			exited := make(chan error, 1)
			go func() { exited <- crashing.cmd.Wait() }()
			select {
			case <-exited:
				if got := crashing.cmd.ProcessState.ExitCode(); got != 3 {
					t.Fatalf("the daemon exited with %d, want 3 (VFT_DEBUG_CRASH_AT): %s", got, crashing.stderr)
				}
			case <-time.After(2 * time.Minute):
				t.Fatalf("the daemon did not crash at %s: %s", step, crashing.stderr)
			}

			startDaemon(t, submitter, viaMiner) // the same repo, no crash this time
			var rec job.Record
			for deadline := time.Now().Add(time.Minute); ; {
				out, _, code := vft(t, viaMiner, "--repo", submitter, "job", "status", jobID, "--json")
				if code == 0 && json.Unmarshal([]byte(out), &rec) == nil && rec.State.Terminal() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job %s still %s a minute after the restart", jobID, rec.State)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if rec.State != job.StateDone || len(rec.Payouts) != 1 || rec.Payouts[0].Signature == "" {
				t.Fatalf("after the restart the job is %s (%s) with payouts %+v", rec.State, rec.Reason, rec.Payouts)
			}
			balance, stderr, code := vft(t, env, "--repo", miner, "wallet", "balance", "--json")
			if code != 0 {
				t.Fatal(stderr)
			}
			var bal struct {
				Lamports uint64 `json:"lamports"`
			}
			json.Unmarshal([]byte(balance), &bal)
			if bal.Lamports != reward {
				t.Fatalf("miner %s holds %d lamports, want exactly one reward of %d", minerID, bal.Lamports, reward)
			}
		})
	}
}
