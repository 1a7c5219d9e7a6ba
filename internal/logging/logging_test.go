package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
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
