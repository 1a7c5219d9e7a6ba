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

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
	"github.com/vft-network/vft/repo"
)

// The dashboard in a real browser: a miner's page and the submitter's show
// live values from the daemon, a job submitted through the API moves
// through its stages to done in the page without a reload, the page shows
// nothing without the token from the URL fragment (other local users
// cannot read the node), and it says so when the daemon stops.
func TestDashboard(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: the dashboard test needs it (Debian: apt-get install chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	miners := New(t, 3, Options{Configure: func(i int, cfg *config.Config) {
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s")) // fill the submitter's table soon
	}})
	subCfg := Config(config.ModeLight)
	BootstrapTo(&subCfg, miners[0])
	subDir := filepath.Join(t.TempDir(), "submitter")
	submitter := StartIn(t, subDir, subCfg, node.Options{})
	if _, err := WaitFullMesh(ctx, append(miners, submitter)); err != nil {
		t.Fatal(err)
	}
	token := apiToken(t, subDir)
	client := api.NewClient(submitter.APIAddr(), token)

	browser, stop := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root, where chromium's sandbox refuses to start
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1200),
	)...)
	defer stop()
	shots := os.Getenv("VFT_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}

	// A miner's page: identity, peers, the network table, GPUs.
	miner := miners[0]
	minerTab, closeMinerTab := chromedp.NewContext(browser)
	defer closeMinerTab()
	run(t, minerTab, chromedp.Navigate("http://"+miner.APIAddr()+"/#token="+mustToken(t, miner)))
	waitPage(t, minerTab, "the peer ID", fmt.Sprintf(`text("#peer-id") === %q`, miner.Network().ID().String()))
	waitPage(t, minerTab, "the live feed", `text("#conn") === "live"`)
	waitPage(t, minerTab, "a peer count", `Number(text("#peer-count")) > 0`)
	waitPage(t, minerTab, "the network table", `rows("#nodes-table") >= 1`)
	waitPage(t, minerTab, "the GPU panel", `document.querySelector("#gpus .gpu, #gpus .empty:not([hidden])") !== null && !text("#gpus").includes("Waiting")`)

	// The submitter's page without the token: nothing but how to get it.
	subURL := "http://" + submitter.APIAddr() + "/"
	subTab, closeSubTab := chromedp.NewContext(browser)
	defer closeSubTab()
	run(t, subTab, chromedp.Navigate(subURL))
	waitPage(t, subTab, "the token explanation", `!document.getElementById("token-note").hidden && text("#token-note").includes("vft dashboard")`)
	waitPage(t, subTab, "no data without the token", `text("#peer-id") === "…" && text("#mode") === "…" && rows("#nodes-table") === 0 && text("#conn") === "needs token"`)

	// A fresh load, as from the URL `vft dashboard` prints.
	run(t, subTab, chromedp.Navigate("about:blank"), chromedp.Navigate(subURL+"#token="+token))
	waitPage(t, subTab, "the token kept out of the address bar", `location.hash === "" && sessionStorage.getItem("vft-token") !== null`)
	waitPage(t, subTab, "the submitter's mode", `text("#mode") === "light" && document.body.classList.contains("light")`)
	waitPage(t, subTab, "the network table", `rows("#nodes-table") >= 3 && text("#nodes-table").includes("miner")`)
	waitPage(t, subTab, "the live feed", `text("#conn") === "live"`)
	evaluate(t, subTab, `window.vftNoReload = true`)

	// A job submitted through the API shows up and reaches done live.
	spec := wasmSpec(3, 3*time.Minute)
	spec.Module, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, "../../examples/wordcount"), 128<<20
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, "../../examples/wordcount/testdata/books")}}
	id, err := client.SubmitJob(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`document.querySelector('#jobs-submitted tr[data-job=%q]')`, id)
	waitPage(t, subTab, "the job's row", row+` !== null`)
	waitPage(t, subTab, "the job done", row+`.dataset.state === "done" && `+row+`.querySelector(".stage.current").textContent === "done"`)
	waitPage(t, subTab, "the stages passed", `["offered", "assigned", "verifying"].every(s => [...`+row+`.querySelectorAll(".stage.passed")].some(e => e.textContent === s))`)
	waitPage(t, subTab, "the log", `text("#log").includes("done: result")`)
	waitPage(t, subTab, "no reload", `window.vftNoReload === true`)
	waitPage(t, minerTab, "the worked job", fmt.Sprintf(`document.querySelector('#jobs-worked tr[data-job=%q]') !== null`, id))
	screenshot(t, minerTab, filepath.Join(shots, "dashboard-miner.png"))

	// A job that runs until cancelled, cancelled from the page.
	spec = wasmSpec(1, 5*time.Minute)
	spec.Module, spec.Args, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, "../../executor/wasm/testdata/badguest"), []string{"loop"}, 128<<20
	spec.Needs.TimeoutMS = uint64((10 * time.Minute).Milliseconds())
	long, err := client.SubmitJob(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	button := fmt.Sprintf(`document.querySelector('#jobs-submitted button.cancel[data-job=%q]')`, long)
	waitPage(t, subTab, "an enabled cancel button", button+` !== null && !`+button+`.disabled`)
	screenshot(t, subTab, filepath.Join(shots, "dashboard-submitter.png"))
	evaluate(t, subTab, `(`+button+`.click(), true)`)
	waitPage(t, subTab, "the job cancelled", fmt.Sprintf(`document.querySelector('#jobs-submitted tr[data-job=%q]').dataset.state === "cancelled"`, long))
	if r, err := client.Job(ctx, long); err != nil || r.State != job.StateCancelled {
		t.Fatalf("after the dashboard's cancel: %s, %v", r.State, err)
	}

	// A job cancelled while offered (no miner has 1 TiB of memory) was
	// never assigned, run, verified or settled, and the page says so: it
	// used to draw every stage before "cancelled" as passed.
	spec = wasmSpec(1, 5*time.Minute)
	spec.Module, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, "../../examples/wordcount"), 1<<40
	unassigned, err := client.SubmitJob(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	row = fmt.Sprintf(`document.querySelector('#jobs-submitted tr[data-job=%q]')`, unassigned)
	// While it waits, its row says why, as the node keeps it current.
	waitPage(t, subTab, "why the job waits", row+` !== null && `+row+`.textContent.includes("waiting: needs 1 worker(s)") && `+row+`.textContent.includes("the job needs 1048576 MiB")`)
	if err := client.CancelJob(ctx, unassigned, "nobody can run it"); err != nil {
		t.Fatal(err)
	}
	stages := func(cls string) string {
		return `[...` + row + `.querySelectorAll(".stage` + cls + `")].map(e => e.textContent).join(",")`
	}
	waitPage(t, subTab, "the job cancelled at offered", row+` !== null && `+row+`.dataset.state === "cancelled"`)
	waitPage(t, subTab, "only offered passed", stages(".passed")+` === "offered" && `+row+`.querySelector(".stage.passed").classList.contains("ended")`)
	waitPage(t, subTab, "the later stages unreached", stages(".unreached")+` === "assigned,running,verifying,settling"`)
	waitPage(t, subTab, "where it ended", stages(".current")+` === "cancelled" && `+row+`.querySelector(".stage.current").classList.contains("final-cancelled")`)

	// The daemon stops: the page says so instead of showing stale values.
	if err := miner.Close(); err != nil {
		t.Fatal(err)
	}
	waitPage(t, minerTab, "the offline banner", `!document.getElementById("offline").hidden && text("#conn") === "offline"`)
}

// pageHelpers are defined in every page before a condition is checked.
const pageHelpers = `
var text = (sel) => { const e = document.querySelector(sel); return e ? e.textContent.trim() : ""; };
var rows = (sel) => document.querySelectorAll(sel + " tbody tr").length;
`

// waitPage polls a JavaScript condition in the page until it holds or the
// test's deadline passes.
// waitPage waits for cond to hold in the page, for up to pageWait: long
// enough for any step of the test on a loaded machine, and short enough to
// fail while the tab can still be asked for its log.
func waitPage(t *testing.T, tab context.Context, what, cond string) {
	t.Helper()
	var last string
	giveUp := time.After(pageWait)
	for {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](pageHelpers+"!!("+cond+")"))
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err.Error()
		}
		select {
		case <-tab.Done():
			t.Fatalf("the page never showed %s (%s; last error: %s)", what, cond, last)
		case <-giveUp:
			t.Fatalf("the page did not show %s within %v (%s; last error: %s)\npage log:\n%s", what, pageWait, cond, last, pageLog(tab))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

const pageWait = 2 * time.Minute

// pageLog is the dashboard's live log as shown, for a failure message: a
// refused API call (a cancel, say) is logged there.
func pageLog(tab context.Context) string {
	ctx, cancel := context.WithTimeout(tab, 3*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#log") ? document.querySelector("#log").innerText.slice(-4000) : "(no #log)"`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return text
}

func run(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatal(err)
	}
}

// evaluate runs a script in the page; it must end in a boolean.
func evaluate(t *testing.T, tab context.Context, script string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](script)); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
}

func screenshot(t *testing.T, tab context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

func mustToken(t *testing.T, nd *node.Node) string {
	t.Helper()
	token, err := nd.APIToken()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// apiClient is a client of nd's API with its token.
func apiClient(t *testing.T, nd *node.Node) *api.Client {
	t.Helper()
	return api.NewClient(nd.APIAddr(), mustToken(t, nd))
}

func apiToken(t *testing.T, dir string) string {
	t.Helper()
	r, err := repo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	token, err := r.APIToken()
	if err != nil {
		t.Fatal(err)
	}
	return token
}
