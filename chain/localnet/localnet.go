// Package localnet runs the VFT development chain: a single-node Solana
// JSON-RPC and PubSub server around LiteSVM (the real Solana runtime, with
// the System, SPL Token, Associated Token Account and Memo programs),
// implemented in Node.js in this directory (server.js).
//
// Start launches `node server.js` on loopback with random ports, waits until
// it is ready, and returns its RPC and websocket URLs. The server needs its
// npm dependencies: run `npm ci --prefix chain/localnet` once in a checkout.
//
// Finding the server directory (it holds server.js and node_modules, so it
// cannot be embedded in a binary): Options.Dir, else $VFT_LOCALNET_DIR, else
// the directory of this source file when it still exists (tests, and
// binaries built from a checkout), else chain/localnet under the current
// directory, the executable's directory, or one of their parents (a `vft`
// binary run from inside a checkout, e.g. bin/vft).
package localnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DirEnv names the environment variable that points at the server directory.
const DirEnv = "VFT_LOCALNET_DIR"

var (
	// ErrNodeMissing means no `node` executable was found.
	ErrNodeMissing = errors.New("chain/localnet: node (Node.js 20 or newer) not found; install Node.js or set Options.Node")
	// ErrNotInstalled means the server's npm dependencies are not installed.
	ErrNotInstalled = errors.New("chain/localnet: node_modules missing, run `npm ci --prefix chain/localnet`")
	// ErrNotFound means the server directory could not be located.
	ErrNotFound = errors.New("chain/localnet: server.js not found; set " + DirEnv + " or Options.Dir to the chain/localnet directory of a VFT checkout")
)

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Dir is the directory holding server.js and node_modules; empty means Locate.
	Dir string
	// Node is the Node.js executable; empty means "node" on $PATH.
	Node string
	// SlotInterval is how often a slot (and a blockhash) is produced; zero
	// means 400ms, Solana's target. A blockhash expires after 150 slots.
	SlotInterval time.Duration
	// RPCPort is the loopback RPC port; zero picks a free one.
	RPCPort int
	// WSPort is the websocket port; zero means RPCPort+1 (Solana's
	// convention, kept also when the RPC port is picked at random).
	WSPort int
	// ReadyTimeout bounds the wait for the server to listen; zero means 30s.
	ReadyTimeout time.Duration
	// Log, if set, receives the server's stderr (its warnings, and request
	// traces when Verbose is set).
	Log     io.Writer
	Verbose bool
}

// Localnet is a running server. Close stops it.
type Localnet struct {
	rpcURL, wsURL string
	cmd           *exec.Cmd
	stdin         io.WriteCloser
	done          chan struct{} // closed when the process has exited
	waitErr       error
	stderr        *tailBuffer
	closeOnce     sync.Once
	closeErr      error
}

// Start launches the server and returns once it accepts requests. ctx bounds
// only the startup; the server runs until Close.
func Start(ctx context.Context, opts Options) (*Localnet, error) {
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = Locate(); err != nil {
			return nil, err
		}
	}
	if err := CheckInstalled(dir); err != nil {
		return nil, err
	}
	node := opts.Node
	if node == "" {
		node = "node"
	}
	nodePath, err := exec.LookPath(node)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNodeMissing, err)
	}
	slot := opts.SlotInterval
	if slot == 0 {
		slot = 400 * time.Millisecond
	}
	slotMs := max(1, slot.Milliseconds())
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}

	args := []string{"server.js",
		"--host", "127.0.0.1",
		"--rpc-port", strconv.Itoa(opts.RPCPort),
		"--slot-ms", strconv.FormatInt(slotMs, 10),
		"--exit-on-stdin-close",
	}
	if opts.WSPort != 0 {
		args = append(args, "--ws-port", strconv.Itoa(opts.WSPort))
	}
	if opts.Verbose {
		args = append(args, "--verbose")
	}
	cmd := exec.Command(nodePath, args...)
	cmd.Dir = dir
	setProcessGroup(cmd)
	// The server exits when this pipe closes, so it cannot outlive us even
	// if we are killed without calling Close.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("chain/localnet: %w", err)
	}
	ready := make(chan [2]string, 1)
	cmd.Stdout = &readyWriter{ready: ready}
	tail := &tailBuffer{max: 8 << 10}
	var errOut io.Writer = tail
	if opts.Log != nil {
		errOut = io.MultiWriter(tail, opts.Log)
	}
	cmd.Stderr = errOut
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chain/localnet: start %s: %w", nodePath, err)
	}

	l := &Localnet{cmd: cmd, stdin: stdin, done: make(chan struct{}), stderr: tail}
	go func() {
		l.waitErr = cmd.Wait()
		close(l.done)
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case urls := <-ready:
		l.rpcURL, l.wsURL = urls[0], urls[1]
		return l, nil
	case <-l.done:
		return nil, fmt.Errorf("chain/localnet: server exited before it was ready (%v): %s", l.waitErr, tail.String())
	case <-timer.C:
		_ = l.Close()
		return nil, fmt.Errorf("chain/localnet: server not ready after %v: %s", timeout, tail.String())
	case <-ctx.Done():
		_ = l.Close()
		return nil, fmt.Errorf("chain/localnet: start: %w", ctx.Err())
	}
}

// readyWriter receives the server's stdout and sends the URLs from its
// ready line; everything else is discarded.
type readyWriter struct {
	ready chan<- [2]string
	line  []byte
	sent  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	if w.sent {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if rpc, ws, ok := parseReady(string(w.line[:i])); ok {
			w.ready <- [2]string{rpc, ws}
			w.sent, w.line = true, nil
			break
		}
		w.line = w.line[i+1:]
	}
	if len(w.line) > 4096 {
		w.line = w.line[len(w.line)-4096:]
	}
	return len(p), nil
}

// parseReady recognises "localnet ready rpc=URL ws=URL".
func parseReady(line string) (rpc, ws string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(line), "localnet ready ")
	if !found {
		return "", "", false
	}
	for _, f := range strings.Fields(rest) {
		if v, found := strings.CutPrefix(f, "rpc="); found {
			rpc = v
		} else if v, found := strings.CutPrefix(f, "ws="); found {
			ws = v
		}
	}
	return rpc, ws, rpc != "" && ws != ""
}

// RPCURL is the HTTP JSON-RPC endpoint, e.g. http://127.0.0.1:8899.
func (l *Localnet) RPCURL() string { return l.rpcURL }

// WSURL is the PubSub websocket endpoint, e.g. ws://127.0.0.1:8900.
func (l *Localnet) WSURL() string { return l.wsURL }

// Done is closed when the server process has exited.
func (l *Localnet) Done() <-chan struct{} { return l.done }

// Close stops the server (SIGTERM to its process group, SIGKILL after 5s)
// and waits for it to exit. It is safe to call more than once.
func (l *Localnet) Close() error {
	l.closeOnce.Do(func() {
		select {
		case <-l.done:
			// Exited on its own: report why unless it was a clean exit.
			if l.waitErr != nil {
				l.closeErr = fmt.Errorf("chain/localnet: server exited early: %w: %s", l.waitErr, l.stderr.String())
			}
			return
		default:
		}
		signalGroup(l.cmd, false)
		select {
		case <-l.done:
		case <-time.After(5 * time.Second):
			signalGroup(l.cmd, true)
			<-l.done
		}
		_ = l.stdin.Close()
	})
	return l.closeErr
}

// Locate finds the server directory as described in the package comment.
func Locate() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		if !hasServer(d) {
			return "", fmt.Errorf("%w (%s=%s has no server.js)", ErrNotFound, DirEnv, d)
		}
		return d, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if d := filepath.Dir(file); hasServer(d) {
			return d, nil
		}
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	for _, start := range starts {
		for d := start; ; d = filepath.Dir(d) {
			if c := filepath.Join(d, "chain", "localnet"); hasServer(c) {
				return c, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", ErrNotFound
}

// CheckInstalled reports ErrNotInstalled unless dir's npm dependencies are
// installed.
func CheckInstalled(dir string) error {
	for _, pkg := range []string{"litesvm", "ws"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			return fmt.Errorf("%w (in %s)", ErrNotInstalled, dir)
		}
	}
	return nil
}

func hasServer(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "server.js"))
	return err == nil
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
