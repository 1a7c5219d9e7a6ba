package testnet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
)

// The miner's Earned card in a real browser, after a paid job on the real
// Solana runtime: the payment the miner found on chain, in SOL (not
// "not available", not base units), listed under the job; the payouts
// table reads in SOL too. The submitter's card says what it paid out. The
// CLI and the API read the same: `vft wallet earned` is the API's
// /api/v1/earnings, checked here through the client.
func TestDashboardEarned(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: the dashboard test needs it (Debian: apt-get install chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lnet := startLocalnet(ctx, t)
	const miners, reward = 2, 1_250_000 // lamports, above the rent-exempt minimum
	nodes := New(t, miners+1, Options{Configure: func(i int, cfg *config.Config) {
		settleOn(cfg, lnet)
		if i == miners {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	airdropFees(ctx, t, nodes)
	submitter, miner := nodes[miners], nodes[0]

	browser, stop := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1400, 1200))...)
	defer stop()
	minerTab, closeMinerTab := chromedp.NewContext(browser)
	defer closeMinerTab()
	run(t, minerTab, chromedp.Navigate("http://"+miner.APIAddr()+"/#token="+mustToken(t, miner)))
	waitPage(t, minerTab, "the live feed", `text("#conn") === "live"`)
	waitPage(t, minerTab, "nothing earned yet", `text("#money-title") === "Earned" && text("#money-total") === "0"`)

	dir := "../../examples/wordcount"
	spec := wasmSpec(miners, 4*time.Minute)
	spec.Module, spec.Seed, spec.Reward = addModule(ctx, t, submitter, dir), 42, reward
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, filepath.Join(dir, "testdata"))}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	paid := waitState(ctx, t, submitter, id, job.StateDone)
	sent := paidTo(paid.Payouts, miner.Key().WalletAddress())
	if sent == nil {
		t.Fatalf("the submitter's payouts %+v do not pay the miner", paid.Payouts)
	}

	waitPage(t, minerTab, "the earnings in SOL", `text("#money-total") === "0.00125 SOL" && text("#money-detail") === "over 1 job"`)
	waitPage(t, minerTab, "the job under Earned", fmt.Sprintf(`document.querySelector('#money-jobs li[data-job=%q]') !== null && text('#money-jobs').includes("0.00125 SOL")`, id))
	waitPage(t, minerTab, "the payout in SOL", fmt.Sprintf(`text("#payouts").includes("0.00125 SOL") && text("#payouts").includes(%q)`, sent.Signature[:8]))
	if shots := os.Getenv("VFT_SCREENSHOT_DIR"); shots != "" {
		screenshot(t, minerTab, filepath.Join(shots, "dashboard-earned.png"))
	}

	e, err := apiClient(t, miner).Earnings(ctx, 10)
	if err != nil || len(e.Earned) != 1 || e.Earned[0].Amount != reward || e.Earned[0].Currency.Unit != "SOL" || e.Earned[0].Currency.Decimals != 9 ||
		len(e.Jobs) != 1 || e.Jobs[0].Job != id {
		t.Fatalf("GET /api/v1/earnings: %+v, %v; want %d lamports (SOL, 9 decimals) for job %s", e, err, reward, id)
	}
	st, err := apiClient(t, miner).JobStatus(ctx, id)
	if err != nil || st.Currency == nil || st.Currency.Unit != "SOL" {
		t.Fatalf("GET /api/v1/jobs/%s: currency %+v, %v; want SOL", id, st.Currency, err)
	}

	subTab, closeSubTab := chromedp.NewContext(browser)
	defer closeSubTab()
	run(t, subTab, chromedp.Navigate("http://"+submitter.APIAddr()+"/#token="+mustToken(t, submitter)))
	waitPage(t, subTab, "what the submitter paid out", `text("#money-title") === "Paid out" && text("#money-total") === "0.0025 SOL"`)
}
