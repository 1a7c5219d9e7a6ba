package kubo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// loopbackOnly is applied to every repo on top of `ipfs init
// --profile=test` (which already listens on 127.0.0.1 only, empties
// Bootstrap and turns mDNS, AutoTLS and AutoConf off): no routing system at
// all (so no DHT or delegated-routing queries), no NAT port mapping, no
// AutoNAT service, no relays or hole punching, no HTTP retrieval, no
// provider announcements and no telemetry. Peers are connected explicitly
// with `ipfs swarm connect` to 127.0.0.1 addresses.
var loopbackOnly = map[string]any{
	"Addresses.API":                         "/ip4/127.0.0.1/tcp/0",
	"Addresses.Gateway":                     "/ip4/127.0.0.1/tcp/0",
	"Addresses.Swarm":                       []string{"/ip4/127.0.0.1/tcp/0"},
	"Addresses.Announce":                    []string{},
	"Addresses.AppendAnnounce":              []string{},
	"Bootstrap":                             []string{},
	"Peering.Peers":                         nil,
	"Routing.Type":                          "none",
	"Routing.DelegatedRouters":              []string{},
	"Ipns.DelegatedPublishers":              []string{},
	"DNS.Resolvers":                         map[string]string{},
	"Discovery.MDNS.Enabled":                false,
	"Swarm.DisableNatPortMap":               true,
	"Swarm.RelayClient.Enabled":             false,
	"Swarm.RelayService.Enabled":            false,
	"Swarm.EnableHolePunching":              false,
	"AutoNAT.ServiceMode":                   "disabled",
	"AutoTLS.Enabled":                       false,
	"AutoConf.Enabled":                      false,
	"HTTPRetrieval.Enabled":                 false,
	"Provide.Enabled":                       false,
	"Plugins.Plugins.telemetry.Config.Mode": "off",
}

// Repo is an initialised kubo repository (IPFS_PATH).
type Repo struct {
	Bin  string
	Path string
}

// Init runs `ipfs init --profile=test[,profiles...]` in dir and applies
// the loopback-only settings to its config.
func Init(ctx context.Context, bin, dir string, profiles ...string) (*Repo, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create kubo repo dir: %w", err)
	}
	r := &Repo{Bin: bin, Path: dir}
	profile := strings.Join(append([]string{"test"}, profiles...), ",")
	if _, err := r.Run(ctx, nil, "init", "--empty-repo", "--profile="+profile); err != nil {
		return nil, err
	}
	if err := r.patchConfig(loopbackOnly); err != nil {
		return nil, err
	}
	return r, nil
}

// Env is the environment every ipfs command runs with.
func (r *Repo) Env() []string {
	return append(os.Environ(),
		"IPFS_PATH="+r.Path,
		"IPFS_TELEMETRY=off",
		"DO_NOT_TRACK=1",
		"GOLOG_LOG_LEVEL=error",
	)
}

// Command returns `ipfs args...` set up to run on this repo.
func (r *Repo) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.Bin, args...)
	cmd.Env = r.Env()
	cmd.Dir = r.Path
	return cmd
}

// Run runs `ipfs args...` (with stdout written to stdout if not nil) and
// returns what it printed on stdout otherwise. The error carries stderr.
func (r *Repo) Run(ctx context.Context, stdout io.Writer, args ...string) ([]byte, error) {
	cmd := r.Command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ipfs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// Config reads the repo's config file as generic JSON.
func (r *Repo) Config() (map[string]any, error) {
	b, err := os.ReadFile(filepath.Join(r.Path, "config"))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse %s/config: %w", r.Path, err)
	}
	return m, nil
}

// patchConfig sets dotted keys in the config file. Editing the file is
// much quicker than one `ipfs config` process per key, and the daemon
// rejects a key it does not know when it starts.
func (r *Repo) patchConfig(set map[string]any) error {
	m, err := r.Config()
	if err != nil {
		return err
	}
	for key, v := range set {
		parts := strings.Split(key, ".")
		cur := m
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		cur[parts[len(parts)-1]] = v
	}
	return r.WriteConfig(m)
}

// WriteConfig replaces the repo's config file.
func (r *Repo) WriteConfig(m map[string]any) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.Path, "config"), b, 0o600)
}

// Lookup returns the config value at a dotted key.
func Lookup(cfg map[string]any, key string) (any, bool) {
	var cur any = cfg
	for _, p := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Daemon is a running `ipfs daemon`.
type Daemon struct {
	Repo *Repo
	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	log bytes.Buffer // stdout and stderr
	err error        // from Wait

	stopOnce sync.Once
}

// StartDaemon starts `ipfs daemon` on the repo and waits until it says it
// is ready.
func (r *Repo) StartDaemon(ctx context.Context) (*Daemon, error) {
	// Not CommandContext: the daemon outlives ctx, which only bounds the start.
	cmd := exec.Command(r.Bin, "daemon", "--migrate=false", "--enable-gc=false")
	cmd.Env = r.Env()
	cmd.Dir = r.Path
	// If the test or bench process dies without Stop (a test timeout, ^C),
	// the daemon must not linger.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	d := &Daemon{Repo: r, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = io.MultiWriter(pw, d.logWriter())
	cmd.Stderr = d.logWriter()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ipfs daemon: %w", err)
	}
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		pw.Close()
		close(d.done)
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "Daemon is ready") {
				close(ready)
				signalled = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("ipfs daemon exited before it was ready (%v):\n%s", d.waitErr(), d.Log())
	case <-ctx.Done():
		d.Stop()
		return nil, fmt.Errorf("ipfs daemon not ready: %w:\n%s", ctx.Err(), d.Log())
	}
}

type lockedWriter struct{ d *Daemon }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.log.Write(p)
}

func (d *Daemon) logWriter() io.Writer { return lockedWriter{d} }

// Log is what the daemon printed so far.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

func (d *Daemon) waitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Pid is the daemon's process ID.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Stop interrupts the daemon and waits for it to exit (killing it after
// 20 seconds). It is safe to call more than once.
func (d *Daemon) Stop() {
	d.stopOnce.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
}

// Identity is what `ipfs id` reports.
type Identity struct {
	ID        string
	Addresses []string
}

// ID runs `ipfs id`.
func (r *Repo) ID(ctx context.Context) (Identity, error) {
	out, err := r.Run(ctx, nil, "id")
	if err != nil {
		return Identity{}, err
	}
	var id Identity
	if err := json.Unmarshal(out, &id); err != nil {
		return Identity{}, fmt.Errorf("parse ipfs id: %w", err)
	}
	return id, nil
}

// LoopbackAddr returns the node's /ip4/127.0.0.1/tcp/... address with its
// /p2p/ suffix, failing if the node listens anywhere but loopback.
func (id Identity) LoopbackAddr() (string, error) {
	var found string
	for _, a := range id.Addresses {
		if !strings.HasPrefix(a, "/ip4/127.0.0.1/") && !strings.HasPrefix(a, "/ip6/::1/") {
			return "", fmt.Errorf("kubo node %s has a non-loopback address %s", id.ID, a)
		}
		if found == "" && strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			found = a
		}
	}
	if found == "" {
		return "", fmt.Errorf("kubo node %s has no /ip4/127.0.0.1/tcp address: %v", id.ID, id.Addresses)
	}
	return found, nil
}

// PeakRSS reads VmHWM (peak resident set size, in bytes) of a live process.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
