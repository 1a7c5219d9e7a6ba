package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vft-network/vft/executor/wasm/wasmtest"
	"github.com/vft-network/vft/job"
)

// `vft devnet` as a user runs it: the localnet, a token, 3 miner processes
// (one dishonest) and a submitter. A job submitted with the CLI is verified
// with the cheater named, the two honest miners are paid in the devnet's
// token (balances read with `vft wallet balance`), and Ctrl-C stops every
// process and removes nothing the user asked to keep.
func TestDevnet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	cmd := exec.Command(vftBin, "devnet", "--miners", "3", "--cheaters", "1", "--dir", dir, "--json")
	cmd.Env = testEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "devnet ready" {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("devnet exited before it was ready: %s", stderr.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("devnet not ready after 3 minutes: %s", stderr.String())
	}
	var info DevnetInfo
	data, err := os.ReadFile(filepath.Join(dir, "devnet.json"))
	if err != nil || json.Unmarshal(data, &info) != nil || len(info.Nodes) != 4 || info.Mint == "" {
		t.Fatalf("devnet.json: %v %s", err, data)
	}
	cheater := info.Nodes[2]
	if cheater.Fault != job.FaultWrongResult || info.Nodes[0].Fault != "" {
		t.Fatalf("nodes %+v: want miner3 dishonest", info.Nodes)
	}
	sub := info.Nodes[3]
	env := testEnv()

	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	// A bad --floats is refused before anything is offered, naming it.
	out, errOut, code := vft(t, env, "--repo", sub.Repo, "job", "submit", "--wasm", module, "--floats", "fast")
	if code == 0 || !strings.Contains(errOut, `floats "fast"`) || !strings.Contains(errOut, "native") {
		t.Fatalf("job submit --floats fast: exit %d, %q; want a refusal naming the value and the choices", code, errOut)
	}
	out, errOut, code = vft(t, env, "--repo", sub.Repo, "job", "submit", "--wasm", module,
		"--input", "../../examples/wordcount/testdata/", "--redundancy", "3", "--verify", "exact",
		"--reward", "7000", "--timeout", "1m", "--wait", "--json")
	if code != 0 {
		t.Fatalf("job submit: %d %s %s", code, out, errOut)
	}
	var rec job.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("job submit --json: %v: %s", err, out)
	}
	if rec.State != job.StateDone || rec.Verdict == nil {
		t.Fatalf("job ended %s: %s (%s)", rec.State, rec.Reason, errOut)
	}
	if len(rec.Verdict.Dissented) != 1 || rec.Verdict.Dissented[0] != cheater.PeerID {
		t.Fatalf("verdict %+v: want the dishonest miner %s named", rec.Verdict, cheater.PeerID)
	}
	if len(rec.Payouts) != 2 {
		t.Fatalf("payouts %+v: want the two honest miners", rec.Payouts)
	}
	for _, n := range info.Nodes[:3] {
		out, errOut, code := vft(t, env, "--repo", n.Repo, "wallet", "balance", "--json")
		if code != 0 {
			t.Fatalf("wallet balance of %s: %s", n.Name, errOut)
		}
		var bal struct {
			Tokens uint64 `json:"tokens"`
			Mint   string `json:"mint"`
		}
		json.Unmarshal([]byte(out), &bal)
		want := uint64(7000)
		if n.Name == cheater.Name {
			want = 0
		}
		if bal.Tokens != want || bal.Mint != info.Mint {
			t.Fatalf("%s holds %d of %s, want %d of %s", n.Name, bal.Tokens, bal.Mint, want, info.Mint)
		}
	}

	checkDevnetDashboard(t, sub.Dashboard, rec.ID)

	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("devnet did not exit cleanly: %v\n%s", err, stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatal("devnet did not stop within 90 s of Ctrl-C")
	}
	for _, n := range info.Nodes {
		if _, err := os.Stat(filepath.Join(n.Repo, "api")); err == nil {
			t.Errorf("%s still has its api file: its daemon did not stop", n.Name)
		}
	}
}

// checkDevnetDashboard opens the submitter's dashboard of the running
// devnet (the URL `vft devnet` printed, token in the fragment) in Debian's
// chromium and waits for the job to show as done, with its dissenter and
// payouts, and the reputation panel to list the excluded cheater; it saves
// a screenshot to $VFT_SCREENSHOT_DIR (else the test's temp dir).
func checkDevnetDashboard(t *testing.T, url, jobID string) {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: the devnet dashboard check needs it (Debian: apt-get install chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	browser, stop := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1400, 1400))...)
	defer stop()
	tab, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	short := jobID[len(jobID)-6:]
	for _, want := range []struct{ what, cond string }{
		{"the job done, with its dissenter", `(() => { const r = [...document.querySelectorAll("#jobs-submitted tbody tr")].find(r => r.textContent.includes("` + short + `")); return !!r && r.textContent.includes("1 dissented") && r.textContent.includes("done"); })()`},
		{"the payouts", `document.querySelectorAll("#payouts tbody tr").length >= 2`},
		{"the excluded cheater", `document.querySelector("#reputation").textContent.includes("yes")`},
	} {
		for {
			ok, err := chromedp.Run(tab, chromedp.Evaluate[bool]("!!("+want.cond+")"))
			if err == nil && ok {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the devnet's dashboard never showed %s (last error %v)", want.what, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	dir := os.Getenv("VFT_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "devnet-submitter.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
