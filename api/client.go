package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/vft-network/vft/heartbeat"
)

// ErrUnreachable means no daemon answered at the API address.
var ErrUnreachable = errors.New("daemon not reachable")

// Client talks to a running daemon's API; the CLI uses it.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for the daemon at addr (host:port).
func NewClient(addr, token string) *Client {
	return &Client{base: "http://" + addr, token: token, http: &http.Client{Timeout: 60 * time.Second}}
}

// ID asks for the node's identity and addresses.
func (c *Client) ID(ctx context.Context) (Identity, error) {
	var out Identity
	return out, c.do(ctx, http.MethodGet, "/api/v1/id", nil, &out)
}

// Peers lists connected peers.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var out []Peer
	return out, c.do(ctx, http.MethodGet, "/api/v1/peers", nil, &out)
}

// Connect asks the daemon to dial a peer.
func (c *Client) Connect(ctx context.Context, addr string) (string, error) {
	var out ConnectResponse
	return out.PeerID, c.do(ctx, http.MethodPost, "/api/v1/swarm/connect", ConnectRequest{Addr: addr}, &out)
}

// Nodes returns the live network table.
func (c *Client) Nodes(ctx context.Context) ([]heartbeat.Entry, error) {
	var out []heartbeat.Entry
	return out, c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, &out)
}

// Health returns the daemon's view of itself.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var out Health
	return out, c.do(ctx, http.MethodGet, "/api/v1/health", nil, &out)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w at %s: is `vft daemon` running?", ErrUnreachable, c.base)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}
