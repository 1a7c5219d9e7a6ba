package hwdetect

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestValidate(t *testing.T) {
	gpu := func(mod func(*GPUOverride)) *Override {
		g := GPUOverride{Name: "RTX 4090", MemoryBytes: 24 << 30}
		mod(&g)
		return &Override{GPUs: []GPUOverride{g}}
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{"default", DefaultConfig(), ""},
		{"zero", Config{}, ""},
		{"exclude index and uuid", Config{ExcludeGPUs: []string{"0", "12", "GPU-8f6c3a1e"}}, ""},
		{"exclude name", Config{ExcludeGPUs: []string{"0", "gpu1"}}, `hardware.exclude_gpus[1] = "gpu1"`},
		{"exclude negative", Config{ExcludeGPUs: []string{"-1"}}, `exclude_gpus[0] = "-1"`},
		{"exclude bare prefix", Config{ExcludeGPUs: []string{"GPU-"}}, `"GPU-"`},
		{"empty override", Config{Override: &Override{}}, ""},
		{"full override", Config{Override: &Override{CPUCores: 8, MemoryBytes: 1 << 30, GPUs: gpu(func(g *GPUOverride) { g.Count = 4; g.ComputeCapability = "8.9" }).GPUs}}, ""},
		{"negative cores", Config{Override: &Override{CPUCores: -2}}, "hardware.override.cpu_cores = -2"},
		{"gpu without name", Config{Override: gpu(func(g *GPUOverride) { g.Name = " " })}, "hardware.override.gpus[0].name is empty"},
		{"gpu without memory", Config{Override: gpu(func(g *GPUOverride) { g.MemoryBytes = 0 })}, "hardware.override.gpus[0].memory_bytes = 0"},
		{"negative count", Config{Override: gpu(func(g *GPUOverride) { g.Count = -1 })}, "hardware.override.gpus[0].count = -1"},
		{"too many", Config{Override: gpu(func(g *GPUOverride) { g.Count = 80 })}, "declares 80 GPUs"},
		{"bad cc", Config{Override: gpu(func(g *GPUOverride) { g.ComputeCapability = "sm_89" })}, `compute_capability = "sm_89"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
			if _, err := New(tt.cfg, nil, Options{}); (err != nil) != (tt.wantErr != "") {
				t.Errorf("New error = %v, want error %v", err, tt.wantErr != "")
			}
		})
	}
}

// TestExampleTOML keeps the documented [hardware] keys decodable by the
// strict loader the node uses: no key may be left undecoded.
func TestExampleTOML(t *testing.T) {
	var file struct {
		Hardware Config `toml:"hardware"`
	}
	md, err := toml.DecodeFile("testdata/hardware.toml", &file)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Fatalf("undecoded keys %v", u)
	}
	c := file.Hardware
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	o := c.Override
	if len(c.ExcludeGPUs) != 2 || o == nil || o.CPUCores != 16 || o.MemoryBytes != 64<<30 ||
		len(o.GPUs) != 1 || o.GPUs[0].MemoryBytes != 24<<30 || o.GPUs[0].ComputeCapability != "8.9" {
		t.Errorf("decoded %+v, override %+v", c, o)
	}

	// The snippet in Config's doc comment, with its commented-out keys
	// enabled, must decode too: the node engineer copies it.
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(src), "//\t[hardware]")
	end := strings.Index(string(src), "type Config struct")
	if start < 0 || end < start {
		t.Fatal("no [hardware] snippet in Config's doc comment")
	}
	commentedKey := regexp.MustCompile(`^# ((\[|[a-z_]+ = ).*)$`)
	var doc strings.Builder
	for _, l := range strings.Split(string(src[start:end]), "\n") {
		l = strings.TrimPrefix(strings.TrimPrefix(l, "//"), "\t")
		doc.WriteString(commentedKey.ReplaceAllString(l, "$1") + "\n")
	}
	file.Hardware = Config{}
	if md, err = toml.Decode(doc.String(), &file); err != nil || len(md.Undecoded()) != 0 {
		t.Fatalf("doc snippet: %v, undecoded %v\n%s", err, md.Undecoded(), doc.String())
	}
	if o := file.Hardware.Override; o == nil || len(o.GPUs) != 1 || o.CPUCores == 0 || o.MemoryBytes == 0 {
		t.Fatalf("doc snippet does not set every key:\n%s", doc.String())
	}
	if err := file.Hardware.Validate(); err != nil {
		t.Fatalf("doc snippet: %v", err)
	}
}
