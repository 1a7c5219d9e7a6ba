package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	golog "github.com/ipfs/go-log/v2"
)

func TestNewHandlerFormats(t *testing.T) {
	cases := []struct {
		format   string
		wantJSON bool
	}{
		{"json", true},
		{"text", false},
		{"auto", true}, // a bytes.Buffer is not a terminal
	}
	for _, tc := range cases {
		t.Run(tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			h, err := NewHandler(Config{Level: "info", Format: tc.format, LibP2PLevel: "warn"}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			slog.New(h).Info("hello", "k", 1)
			isJSON := json.Valid(bytes.TrimSpace(buf.Bytes()))
			if isJSON != tc.wantJSON {
				t.Fatalf("format %s wrote %q (JSON=%v)", tc.format, buf.String(), isJSON)
			}
		})
	}
}

func TestValidateNamesBadValue(t *testing.T) {
	err := Config{Level: "loud", Format: "auto", LibP2PLevel: "warn"}.Validate()
	if err == nil || !strings.Contains(err.Error(), `"loud"`) {
		t.Fatalf("Validate = %v, want error naming \"loud\"", err)
	}
	err = Config{Level: "info", Format: "xml", LibP2PLevel: "warn"}.Validate()
	if err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Fatalf("Validate = %v, want error naming \"xml\"", err)
	}
}

// Logs from the IPFS libraries (zap through go-log) come out of our handler,
// filtered at the library level.
func TestRouteLibrariesCarriesGoLog(t *testing.T) {
	var buf bytes.Buffer
	RouteLibraries(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), slog.LevelWarn)
	lg := golog.Logger("vft-test-subsystem")
	lg.Infow("too chatty", "a", 1)
	lg.Warnw("disk nearly full", "free", 42)
	out := buf.String()
	if strings.Contains(out, "too chatty") {
		t.Fatalf("info from a library passed a warn filter: %s", out)
	}
	if !strings.Contains(out, "disk nearly full") || !strings.Contains(out, `"free":42`) || !strings.Contains(out, "vft-test-subsystem") {
		t.Fatalf("warning from go-log not routed with its fields and logger name: %q", out)
	}
}

// kad-dht's warning that its routing table is empty, which every daemon
// logged as it started, comes out at debug; its other warnings stay
// warnings.
func TestEmptyRoutingTableIsNotAWarning(t *testing.T) {
	var buf bytes.Buffer
	RouteLibraries(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), slog.LevelDebug)
	lg := golog.Logger("dht/RtRefreshManager")
	// The two forms kad-dht's refresh loop logs: the error in the message
	// (at start) and as a field (on a later refresh).
	lg.Warn("failed when refreshing routing table", errors.New("failed to query for self, err=failed to find any peer in table"))
	lg.Warnw("failed when refreshing routing table", "error", errors.New("failed to refresh cpl=0, err=failed to find any peer in table"))
	lg.Warnw("failed when refreshing routing table", "error", errors.New("query timed out"))
	var levels []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec struct{ Level string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v in %q", err, line)
		}
		levels = append(levels, rec.Level)
	}
	if want := []string{"DEBUG", "DEBUG", "WARN"}; !slices.Equal(levels, want) {
		t.Fatalf("levels %v, want %v: %s", levels, want, buf.String())
	}

	// At the default library level (warn) the first two are not written.
	buf.Reset()
	RouteLibraries(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), slog.LevelWarn)
	lg.Warnw("failed when refreshing routing table", "error", errors.New("failed to find any peer in table"))
	if buf.Len() != 0 {
		t.Fatalf("an empty routing table was logged at the warn level: %s", buf.String())
	}
}
