package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vft-network/vft/job"
)

// get reads url with the test token.
func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// The dashboard is served with a Content-Security-Policy that allows only
// its own scripts (none inline) and only this API as a connection target.
func TestDashboardServedWithCSP(t *testing.T) {
	s, _ := startServer(t)
	s.ServeDashboard()
	resp, body := get(t, "http://"+s.Addr()+"/")
	if resp.StatusCode != 200 || !strings.Contains(body, "<title>") {
		t.Fatalf("/: %d %.200s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(body, "<script>") || strings.Contains(body, " onclick=") {
		t.Fatal("the dashboard relies on inline script")
	}
	for _, asset := range []string{"/assets/app.js", "/assets/style.css"} {
		if resp, _ := get(t, "http://"+s.Addr()+asset); resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("%s: %d, CSP %q", asset, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
}

func TestNoDashboard(t *testing.T) {
	s, _ := startServer(t)
	s.NoDashboard("edge devices serve no dashboard")
	resp, body := get(t, "http://"+s.Addr()+"/")
	if resp.StatusCode != 404 || !strings.Contains(body, "edge devices") {
		t.Fatalf("/: %d %q, want 404 with the reason", resp.StatusCode, body)
	}
}

type fakeJobs struct{ cancelled []string }

func (f *fakeJobs) Submit(context.Context, job.Spec) (string, error) { return "j1", nil }
func (f *fakeJobs) List(context.Context) ([]job.Record, error)       { return nil, nil }
func (f *fakeJobs) Status(context.Context, string) (job.Record, error) {
	return job.Record{}, job.ErrNoJob
}
func (f *fakeJobs) Cancel(_ context.Context, id, _ string) error {
	f.cancelled = append(f.cancelled, id)
	return nil
}

// What the dashboard can change needs the token even from the dashboard's
// own origin: a same-origin page without #token= gets 401.
func TestJobCallsNeedToken(t *testing.T) {
	s, _ := startServer(t)
	jobs := &fakeJobs{}
	s.ServeJobs(jobs)
	origin := "http://" + s.Addr()
	for _, tc := range []struct {
		name, path, body, token string
		want                    int
	}{
		{"cancel without token", "/api/v1/jobs/j1/cancel", `{"reason":"x"}`, "", 401},
		{"submit without token", "/api/v1/jobs", `{}`, "", 401},
		{"cancel with token", "/api/v1/jobs/j1/cancel", `{"reason":"x"}`, testToken, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", origin+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Origin", origin)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if len(jobs.cancelled) != 1 {
		t.Fatalf("%d cancels reached the market, want only the authorised one", len(jobs.cancelled))
	}
}

type fakeWallet struct{ err error }

func (f fakeWallet) Wallet(context.Context) (WalletInfo, error) {
	return WalletInfo{Address: "Addr1", Balance: 42}, f.err
}

func TestWallet(t *testing.T) {
	s, _ := startServer(t)
	wl := &fakeWallet{}
	s.ServeWallet(wl)
	if resp, body := get(t, "http://"+s.Addr()+"/api/v1/wallet"); resp.StatusCode != 200 || !strings.Contains(body, `"balance":42`) {
		t.Fatalf("wallet: %d %s", resp.StatusCode, body)
	}
	wl.err = errors.New("chain unreachable at http://127.0.0.1:1: connection refused")
	if resp, body := get(t, "http://"+s.Addr()+"/api/v1/wallet"); resp.StatusCode != 503 || !strings.Contains(body, "127.0.0.1:1") {
		t.Fatalf("wallet with chain down: %d %s, want 503 naming the RPC", resp.StatusCode, body)
	}
}
