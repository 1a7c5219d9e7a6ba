package api

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vft-network/vft/job"
)

// addedContent records what a spec file made the daemon add.
type addedContent struct {
	fakeContent
	paths []string
}

func (c *addedContent) Add(_ context.Context, req AddRequest, _ func(int64, int64)) (AddResult, error) {
	c.paths = append(c.paths, req.Path)
	return AddResult{CID: "bafkqaaa"}, nil // the empty identity CID: valid, no blocks
}

type capturingJobs struct {
	fakeJobs
	specs []job.Spec
}

func (j *capturingJobs) Submit(_ context.Context, spec job.Spec) (string, error) {
	j.specs = append(j.specs, spec)
	return "j1", nil
}

// POST /api/v1/jobs/file resolves a spec file the way `vft job submit`
// does: paths relative to the file, added through the content store, the
// defaults filled in; a bad file is a 400 that names the problem.
func TestSubmitJobFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m.wasm"), []byte("\x00asm"), 0o644)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	spec := filepath.Join(dir, "job.toml")
	os.WriteFile(spec, []byte("module = \"m.wasm\"\ninputs = [\"data/\"]\nredundancy = 3\nreward = 5000\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.toml"), []byte("modul = \"m.wasm\"\n"), 0o644)

	content, jobs := &addedContent{}, &capturingJobs{}
	s, _ := startServer(t)
	s.ServeContent(content)
	s.ServeJobs(jobs)
	base := "http://" + s.Addr()
	cases := []struct {
		name, body string
		want       int
		wantErr    string
	}{
		{"resolves", `{"path":"` + spec + `"}`, 200, ""},
		{"relative path", `{"path":"job.toml"}`, 400, `path "job.toml" is not absolute`},
		{"missing file", `{"path":"` + filepath.Join(dir, "nope.toml") + `"}`, 400, "nope.toml"},
		{"unknown key", `{"path":"` + filepath.Join(dir, "bad.toml") + `"}`, 400, "unknown key modul"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", base+"/api/v1/jobs/file", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]string
			json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != tc.want || !strings.Contains(out["error"], tc.wantErr) {
				t.Fatalf("%d %v, want %d with %q", resp.StatusCode, out, tc.want, tc.wantErr)
			}
		})
	}
	if len(jobs.specs) != 1 {
		t.Fatalf("%d jobs submitted, want 1", len(jobs.specs))
	}
	got := jobs.specs[0]
	if got.Module != "bafkqaaa" || len(got.Inputs) != 1 || got.Inputs[0].Path != "" || got.Verify.Workers != 3 || got.Reward != 5000 || got.Needs.TimeoutMS == 0 {
		t.Fatalf("resolved spec %+v", got)
	}
	want := []string{filepath.Join(dir, "m.wasm"), filepath.Join(dir, "data")}
	if strings.Join(content.paths, " ") != strings.Join(want, " ") {
		t.Fatalf("added %v, want %v", content.paths, want)
	}
}
