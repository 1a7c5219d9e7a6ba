// Package config is the node's configuration: defaults in code, then the
// repo's config.toml (strict: an unknown key is an error), then VFT_*
// environment variables, then command-line overrides. Each domain package
// owns its section's type; this package composes them.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/heartbeat"
	"github.com/vft-network/vft/hwdetect"
	"github.com/vft-network/vft/internal/logging"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/storage"
)

// Mode is what a node does in the network.
type Mode string

const (
	// ModeMiner runs jobs, verifies, earns, and serves the DHT.
	ModeMiner Mode = "miner"
	// ModeLight submits jobs and pays; a DHT client that executes nothing.
	ModeLight Mode = "light"
	// ModeEdge is a small headless device that runs WASM jobs only.
	ModeEdge Mode = "edge"
)

// ErrUnknownKey reports a key the config does not have.
var ErrUnknownKey = errors.New("unknown config key")

// Config is the whole node configuration, as written in config.toml.
type Config struct {
	Node NodeConfig     `toml:"node"`
	Log  logging.Config `toml:"log"`
	P2P  p2p.Config     `toml:"p2p"`
	API  api.Config     `toml:"api"`

	Hardware  hwdetect.Config  `toml:"hardware"`
	Heartbeat heartbeat.Config `toml:"heartbeat"`
	Market    MarketConfig     `toml:"market"`
	Executor  ExecutorConfig   `toml:"executor"`
	Storage   storage.Config   `toml:"storage"`
	Chain     chain.Config     `toml:"chain"`
	Debug     DebugConfig      `toml:"debug"`
}

// DebugConfig is the `[debug]` section: switches for tests and demos.
type DebugConfig struct {
	// AllowFaults lets VFT_DEBUG_FAULT make this node a deliberately
	// dishonest miner. Off, a set VFT_DEBUG_FAULT stops the daemon.
	AllowFaults bool `toml:"allow_faults"`
}

// MarketConfig is the `[market]` section: what this node sells and on
// what terms. Heartbeats announce it; the job market enforces it.
type MarketConfig struct {
	// MinPrice is the least this node accepts for a job, in the smallest
	// unit of Mint (lamports when Mint is empty).
	MinPrice uint64 `toml:"min_price"`
	// Mint is the SPL token prices are in; empty means SOL.
	Mint string `toml:"mint"`
	// MaxJobs is how many jobs run at once.
	MaxJobs int `toml:"max_jobs"`
	// Executors offered: "wasm" (sandboxed WebAssembly) and, opt-in,
	// "native" (commands under bubblewrap, for GPU work).
	Executors []string `toml:"executors"`
	// AllowedSubmitters, when not empty, are the only peer IDs whose jobs
	// this node runs (a private pool).
	AllowedSubmitters []string `toml:"allowed_submitters"`
	// ReportGrace is how long past a job's timeout a submitter waits for a
	// worker's result before giving the work to another miner.
	ReportGrace units.Duration `toml:"report_grace"`
	// RequireEscrow: bid only on jobs whose reward is locked in escrow on
	// chain, checked before the job runs.
	RequireEscrow bool `toml:"require_escrow"`
	// MaxInput caps what one job may make this node fetch and write out
	// (its module and inputs); MaxOutput the most output a job may ask
	// for (needs.max_output); MaxOutputFiles the files and directories a
	// job may leave under /output. A job over them gets no bid, or fails
	// with a reason that names the cap.
	MaxInput       units.Bytes `toml:"max_input"`
	MaxOutput      units.Bytes `toml:"max_output"`
	MaxOutputFiles int         `toml:"max_output_files"`
}

// Validate names a bad value.
func (m MarketConfig) Validate(mode Mode) error {
	for _, s := range m.AllowedSubmitters {
		if _, err := peer.Decode(s); err != nil {
			return fmt.Errorf("market.allowed_submitters: %q is not a peer ID (12D3KooW...)", s)
		}
	}
	if m.ReportGrace.Std() < time.Second {
		return fmt.Errorf("market.report_grace %s is under 1s", m.ReportGrace)
	}
	if m.MaxJobs < 0 || m.MaxJobs > 1024 {
		return fmt.Errorf("market.max_jobs %d is outside 0..1024", m.MaxJobs)
	}
	if m.MaxInput < 1<<20 {
		return fmt.Errorf("market.max_input %s is under 1MiB: no job could stage its module", m.MaxInput)
	}
	if m.MaxOutput < 1<<20 {
		return fmt.Errorf("market.max_output %s is under 1MiB", m.MaxOutput)
	}
	if m.MaxOutputFiles < 1 {
		return fmt.Errorf("market.max_output_files %d is under 1", m.MaxOutputFiles)
	}
	for _, e := range m.Executors {
		switch e {
		case "wasm":
		case "native", "oci":
			if mode == ModeEdge {
				return fmt.Errorf("market.executors: edge nodes run WASM only; remove %q", e)
			}
		default:
			return fmt.Errorf("market.executors: %q is not one of wasm, native, oci", e)
		}
	}
	return nil
}

// ExecutorConfig is the `[executor]` section: how a miner sandboxes jobs.
type ExecutorConfig struct {
	WASM   WASMExecutorConfig   `toml:"wasm"`
	Native NativeExecutorConfig `toml:"native"`
	OCI    OCIExecutorConfig    `toml:"oci"`
}

// OCIExecutorConfig is `[executor.oci]`: container jobs (market.executors
// "oci"), run with crun or runc.
type OCIExecutorConfig struct {
	// Runtime is the OCI runtime binary; empty picks crun, or runc where
	// crun cannot run (hybrid cgroups).
	Runtime string `toml:"runtime"`
	// CacheMaxBytes bounds the unpacked images kept in <repo>/oci-rootfs;
	// the least recently used go past it, and a larger image is refused.
	CacheMaxBytes units.Bytes `toml:"cache_max_bytes"`
	// CDISpecDirs hold the CDI specs of the GPUs (`nvidia-ctk cdi generate`).
	CDISpecDirs []string `toml:"cdi_spec_dirs"`
	// UserNamespace runs each container in a user namespace whose root is
	// host id HostIDBase (65536 ids from there): a process that escapes
	// is nobody on the host. false runs it as host root without
	// capabilities, for kernels without user namespaces.
	UserNamespace bool   `toml:"user_namespace"`
	HostIDBase    uint32 `toml:"host_id_base"`
}

// WASMExecutorConfig is `[executor.wasm]`.
type WASMExecutorConfig struct {
	// MaxModuleBytes refuses larger modules before they are compiled:
	// compiling takes about 20 bytes of memory per module byte, outside
	// the job's memory limit, and time in proportion to the code.
	MaxModuleBytes units.Bytes `toml:"max_module_bytes"`
	// CacheMaxBytes bounds the compiled code kept on disk
	// (<repo>/wasm-cache); the oldest is removed past it.
	CacheMaxBytes units.Bytes `toml:"cache_max_bytes"`
	// Runtime runs the modules: "wasmtime" or "wazero"; "" is the build's
	// default (Wasmtime where vft was built with cgo). Results are the
	// same on both; `vft doctor` says which runs.
	Runtime string `toml:"runtime"`
	// Isolate runs each Wasmtime task in a child process killed at its
	// deadline: a runtime crash cannot take the node down and tight loops
	// run faster, for ~20 ms more per task (docs/BENCHMARKS.md).
	Isolate bool `toml:"isolate"`
}

// NativeExecutorConfig is `[executor.native]`.
type NativeExecutorConfig struct {
	// AllowWithoutCgroups runs native jobs on a host without usable
	// cgroups, with rlimits only (no CPU cap); false refuses them.
	AllowWithoutCgroups bool `toml:"allow_without_cgroups"`
	// MaxProcesses caps the processes of one job (against fork bombs).
	MaxProcesses int `toml:"max_processes"`
	// TmpBytes and WorkBytes bound a job's /tmp and /work (memory-backed).
	TmpBytes  units.Bytes `toml:"tmp_bytes"`
	WorkBytes units.Bytes `toml:"work_bytes"`
}

// Validate names a bad value.
func (e ExecutorConfig) Validate() error {
	for _, b := range []struct {
		key string
		v   units.Bytes
	}{
		{"executor.wasm.max_module_bytes", e.WASM.MaxModuleBytes},
		{"executor.wasm.cache_max_bytes", e.WASM.CacheMaxBytes},
		{"executor.native.tmp_bytes", e.Native.TmpBytes},
		{"executor.native.work_bytes", e.Native.WorkBytes},
		{"executor.oci.cache_max_bytes", e.OCI.CacheMaxBytes},
	} {
		if b.v < 1<<20 {
			return fmt.Errorf("%s %s is under 1MiB", b.key, b.v)
		}
	}
	switch e.WASM.Runtime {
	case "", "wasmtime", "wazero":
	default:
		return fmt.Errorf("executor.wasm.runtime %q is not a WASM runtime; use \"wasmtime\", \"wazero\" or \"\" for the build's default", e.WASM.Runtime)
	}
	if n := e.Native.MaxProcesses; n < 8 || n > 1<<20 {
		return fmt.Errorf("executor.native.max_processes %d is outside 8..1048576", n)
	}
	if e.OCI.UserNamespace {
		if err := oci.CheckHostIDBase(e.OCI.HostIDBase); err != nil {
			return fmt.Errorf("executor.oci.host_id_base: %w", err)
		}
	}
	return nil
}

// NodeConfig is the `[node]` section.
type NodeConfig struct {
	// Mode is miner, light or edge.
	Mode Mode `toml:"mode"`
	// ShutdownTimeout bounds a clean shutdown; past it the process exits.
	ShutdownTimeout units.Duration `toml:"shutdown_timeout"`
}

// Default returns the configuration of a node in the given mode.
func Default(mode Mode) Config {
	cfg := Config{
		Node: NodeConfig{Mode: mode, ShutdownTimeout: units.Duration(30e9)},
		Log:  logging.DefaultConfig(),
		P2P:  p2p.DefaultConfig(),
		API:  api.DefaultConfig(),

		Hardware:  hwdetect.DefaultConfig(),
		Heartbeat: heartbeat.DefaultConfig(),
		Market: MarketConfig{MinPrice: 1000, MaxJobs: 1, Executors: []string{"wasm"}, AllowedSubmitters: []string{},
			ReportGrace: units.Duration(2 * time.Minute),
			MaxInput:    units.Bytes(32 << 30), MaxOutput: units.Bytes(10 << 30), MaxOutputFiles: 100_000},
		Executor: ExecutorConfig{
			WASM: WASMExecutorConfig{MaxModuleBytes: 64 << 20, CacheMaxBytes: 1 << 30},
			Native: NativeExecutorConfig{MaxProcesses: 4096,
				TmpBytes: 1 << 30, WorkBytes: 2 << 30},
			OCI: OCIExecutorConfig{CacheMaxBytes: 20 << 30, CDISpecDirs: []string{"/etc/cdi", "/var/run/cdi"},
				UserNamespace: true, HostIDBase: oci.DefaultHostIDBase},
		},
		Storage: storage.DefaultConfig(),
		Chain:   chain.DefaultConfig(),
	}
	if mode != ModeMiner {
		// Light and edge nodes are dialled out from laptops and devices:
		// a fixed port and router port-mapping help no one.
		cfg.P2P.Listen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}
		cfg.P2P.NATPortMap = false
		// Relaying for others is a miner's job: it stays up and online.
		cfg.P2P.RelayService = false
	}
	if mode == ModeEdge {
		cfg.P2P.ConnLow, cfg.P2P.ConnHigh = 8, 32
	}
	return cfg
}

// ParseMode reads a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeMiner, ModeLight, ModeEdge:
		return m, nil
	}
	return "", fmt.Errorf("mode %q is not one of miner, light, edge", s)
}

// Validate checks every section and names the first bad value.
func (c Config) Validate() error {
	if _, err := ParseMode(string(c.Node.Mode)); err != nil {
		return fmt.Errorf("node.%w", err)
	}
	if c.Node.ShutdownTimeout.Std() < 1e9 {
		return fmt.Errorf("node.shutdown_timeout %s is under 1s", c.Node.ShutdownTimeout)
	}
	for _, v := range []interface{ Validate() error }{c.Log, c.P2P, c.API, c.Hardware, c.Heartbeat, c.Storage, c.Chain, c.Executor} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return c.Market.Validate(c.Node.Mode)
}

// Load reads config.toml over the defaults of the mode it names, then
// applies environment variables. A key the file has but Config does not is
// an error that names the key.
func Load(path string, environ []string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, path)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.ApplyEnv(environ); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes TOML strictly over the defaults. name is used in errors.
func Parse(data []byte, name string) (Config, error) {
	// The mode decides the defaults, so read it first.
	var head struct {
		Node struct {
			Mode string `toml:"mode"`
		} `toml:"node"`
	}
	mode := ModeMiner
	if _, err := toml.Decode(string(data), &head); err == nil && head.Node.Mode != "" {
		if m, err := ParseMode(head.Node.Mode); err == nil {
			mode = m
		}
	}
	cfg := Default(mode)
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("%s: %w %s: check its spelling against node.example.toml or `vft config show`", name, ErrUnknownKey, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// Encode renders the config as TOML.
func (c Config) Encode() ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// Write saves the config atomically with mode 0600: a crash leaves either
// the old file or the new one, never half of one.
func (c Config) Write(path string) error {
	data, err := c.Encode()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.toml")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write config %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write config %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config %s: %w", path, err)
	}
	return nil
}
