package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// node.example.toml is the user's reference: it must parse strictly and
// document every key the node has.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../node.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, "node.example.toml")
	if err != nil {
		t.Fatalf("node.example.toml does not parse strictly: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("node.example.toml is invalid: %v", err)
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		if !hasKey(raw, strings.Split(key, ".")) {
			t.Errorf("node.example.toml does not document %s", key)
		}
	}
	// The example shows the miner defaults, so it must equal them.
	want, _ := Default(ModeMiner).Encode()
	got, _ := cfg.Encode()
	if string(want) != string(got) {
		t.Errorf("node.example.toml differs from the miner defaults:\n--- example\n%s\n--- defaults\n%s", got, want)
	}
}

func hasKey(m map[string]any, path []string) bool {
	v, ok := m[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	sub, ok := v.(map[string]any)
	return ok && hasKey(sub, path[1:])
}

func TestParseRejectsBadInput(t *testing.T) {
	cases := []struct {
		name    string
		toml    string
		wantErr string
	}{
		{"unknown key", "[p2p]\nlisen = []\n", "p2p.lisen"},
		{"unknown section", "[gpu]\nx = 1\n", "gpu.x"},
		{"wrong type", "[p2p]\nconn_low = \"many\"\n", "conn_low"},
		{"bad duration", "[p2p]\ndiscovery_interval = \"often\"\n", "often"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml), "config.toml")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse = %v, want error naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidateNamesBadValue(t *testing.T) {
	cases := []struct {
		name    string
		set     map[string]string
		wantErr string
	}{
		{"mode", map[string]string{"node.mode": "farmer"}, `"farmer"`},
		{"malformed listen multiaddr", map[string]string{"p2p.listen": "/ip4/1.2.3/tcp/1"}, "/ip4/1.2.3/tcp/1"},
		{"bootstrap without peer id", map[string]string{"p2p.bootstrap": "/ip4/127.0.0.1/tcp/4101"}, "/ip4/127.0.0.1/tcp/4101"},
		{"api not loopback", map[string]string{"api.listen": "0.0.0.0:5801"}, "0.0.0.0:5801"},
		{"watermarks", map[string]string{"p2p.conn_low": "50", "p2p.conn_high": "10"}, "conn_high 10"},
		{"wasm runtime", map[string]string{"executor.wasm.runtime": "v8"}, `executor.wasm.runtime "v8"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default(ModeMiner)
			for k, v := range tc.set {
				if err := cfg.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want error naming %s", err, tc.wantErr)
			}
		})
	}
}

// Layering: defaults < file < environment < overrides.
func TestLoadLayering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	file := "[node]\nmode = \"light\"\n[p2p]\nconn_low = 10\nconn_high = 20\nmdns = false\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"VFT_P2P_CONN_HIGH=30",
		"VFT_P2P_BOOTSTRAP=/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4, /ip4/127.0.0.1/udp/1/quic-v1/p2p/12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4",
		"VFT_PATH=/somewhere", // not a config key: ignored
		"HOME=/root",
	}
	cfg, err := Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ApplyOverrides([]string{"p2p.conn_low=5"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Node.Mode != ModeLight {
		t.Errorf("mode = %s, want light from the file", cfg.Node.Mode)
	}
	if cfg.P2P.ConnLow != 5 || cfg.P2P.ConnHigh != 30 || cfg.P2P.MDNS {
		t.Errorf("conn_low=%d conn_high=%d mdns=%v, want 5 (flag) 30 (env) false (file)", cfg.P2P.ConnLow, cfg.P2P.ConnHigh, cfg.P2P.MDNS)
	}
	if len(cfg.P2P.Bootstrap) != 2 {
		t.Errorf("bootstrap = %q, want 2 entries from the comma-separated env", cfg.P2P.Bootstrap)
	}
	// Light-mode defaults apply because the file says light.
	if cfg.P2P.NATPortMap {
		t.Errorf("nat_portmap on for a light node")
	}
	if _, err := Load(path, []string{"VFT_P2P_MDNS=perhaps"}); err == nil || !strings.Contains(err.Error(), "VFT_P2P_MDNS") {
		t.Errorf("bad env value: err = %v, want one naming VFT_P2P_MDNS", err)
	}
}

func TestSetGetRoundTrip(t *testing.T) {
	cfg := Default(ModeMiner)
	for _, key := range Keys() {
		v, err := cfg.Get(key)
		if err != nil {
			t.Fatalf("Get(%s): %v", key, err)
		}
		if err := cfg.Set(key, v); err != nil {
			t.Fatalf("Set(%s, %q): %v", key, v, err)
		}
	}
	again := Default(ModeMiner)
	a, _ := cfg.Encode()
	b, _ := again.Encode()
	if string(a) != string(b) {
		t.Fatalf("Get/Set round trip changed the config:\n%s\n---\n%s", a, b)
	}
	if err := cfg.Set("p2p.nope", "1"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Set unknown key = %v, want ErrUnknownKey", err)
	}
	if err := cfg.Set("p2p", "1"); err == nil || !strings.Contains(err.Error(), "section") {
		t.Fatalf("Set section = %v, want an error saying it is a section", err)
	}
}

func TestWriteIsPrivateAndReadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	cfg := Default(ModeEdge)
	if err := cfg.Write(path); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %04o, want 0600", info.Mode().Perm())
	}
	back, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.Node.Mode != ModeEdge || back.P2P.ConnHigh != 32 {
		t.Fatalf("round trip lost values: %+v", back.Node)
	}
}
