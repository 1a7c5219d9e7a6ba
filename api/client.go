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

	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/verify"
)

// ErrUnreachable means no daemon answered at the API address.
var ErrUnreachable = errors.New("daemon not reachable")

// Client talks to a running daemon's API; the CLI uses it.
type Client struct {
	base  string
	token string
	// http has no overall timeout: calls that move data (add, get, pin
	// add) take as long as the data takes, and show progress instead.
	http *http.Client
	// callTimeout bounds each short call (id, peers, job status...), so a
	// stuck daemon gives an error rather than a hung command.
	callTimeout time.Duration
}

// DefaultCallTimeout bounds a call that moves no data.
const DefaultCallTimeout = 60 * time.Second

// NewClient returns a client for the daemon at addr (host:port).
func NewClient(addr, token string) *Client {
	return &Client{base: "http://" + addr, token: token, http: &http.Client{}, callTimeout: DefaultCallTimeout}
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
func (c *Client) Nodes(ctx context.Context) ([]NodeEntry, error) {
	var out []NodeEntry
	return out, c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, &out)
}

// Reputation returns this node's rating of other nodes.
func (c *Client) Reputation(ctx context.Context) ([]verify.Entry, error) {
	var out []verify.Entry
	return out, c.do(ctx, http.MethodGet, "/api/v1/reputation", nil, &out)
}

// Health returns the daemon's view of itself.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var out Health
	return out, c.do(ctx, http.MethodGet, "/api/v1/health", nil, &out)
}

// do makes a short call, bounded by callTimeout.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	if c.callTimeout <= 0 {
		return c.doUnbounded(ctx, method, path, body, out)
	}
	bounded, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	err := c.doUnbounded(bounded, method, path, body, out)
	if err != nil && errors.Is(bounded.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("%s %s: the daemon did not answer within %s: is it overloaded or stuck? (its log says)", method, path, c.callTimeout)
	}
	return err
}

// doUnbounded makes a call that may take as long as its work: a GC or a
// repo stat reads every block of a large store. Only ctx ends it.
func (c *Client) doUnbounded(ctx context.Context, method, path string, body, out any) error {
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
		return fmt.Errorf("%s %s: %w", method, path, orCanceled(ctx, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, orCanceled(ctx, err))
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

// Add asks the daemon to import a file or directory on this machine.
func (c *Client) Add(ctx context.Context, req AddRequest, progress func(done, total int64)) (AddResult, error) {
	var out AddResult
	err := c.stream(ctx, "/api/v1/add", req, progress, &out)
	return out, err
}

// Get asks the daemon to fetch req.CID and write it to req.Output, within
// req's limits (zero: what fits on the disk, 1048576 entries).
func (c *Client) Get(ctx context.Context, req GetRequest, progress func(done, total int64)) (GetResult, error) {
	var out GetResult
	err := c.stream(ctx, "/api/v1/get", req, progress, &out)
	return out, err
}

// Pin pins a CID recursively, fetching what is missing first: like Get,
// it runs as long as the transfer does and reports progress.
func (c *Client) Pin(ctx context.Context, cid string, progress func(done, total int64)) error {
	var out CIDRequest
	return c.stream(ctx, "/api/v1/pin/add", CIDRequest{CID: cid}, progress, &out)
}

// Unpin removes a pin.
func (c *Client) Unpin(ctx context.Context, cid string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/pin/rm", CIDRequest{CID: cid}, nil)
}

// Pins lists pinned CIDs.
func (c *Client) Pins(ctx context.Context) ([]string, error) {
	var out []string
	return out, c.do(ctx, http.MethodGet, "/api/v1/pin/ls", nil, &out)
}

// Images lists the container images among the pinned content.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	return out, c.do(ctx, http.MethodGet, "/api/v1/images", nil, &out)
}

// GC removes unpinned blocks.
func (c *Client) GC(ctx context.Context) (GCResult, error) {
	var out GCResult
	return out, c.doUnbounded(ctx, http.MethodPost, "/api/v1/repo/gc", nil, &out)
}

// RepoStat describes the content store.
func (c *Client) RepoStat(ctx context.Context) (RepoStat, error) {
	var out RepoStat
	return out, c.doUnbounded(ctx, http.MethodGet, "/api/v1/repo/stat", nil, &out)
}

// stream posts body and reads newline-delimited events until the result.
func (c *Client) stream(ctx context.Context, path string, body any, progress func(done, total int64), out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	// No overall timeout: a 100 GB transfer takes as long as it takes; the
	// daemon's own per-block timeout bounds a stalled fetch.
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w at %s: is `vft daemon` running?", ErrUnreachable, c.base)
		}
		return fmt.Errorf("POST %s: %w", path, orCanceled(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e ErrorResponse
		if json.Unmarshal(msg, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("POST %s: %s", path, resp.Status)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev Event
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("POST %s: %w", path, ctx.Err())
			}
			if errors.Is(err, io.EOF) {
				return errStreamEnded
			}
			return fmt.Errorf("POST %s: %w", path, err)
		}
		switch {
		case ev.Error != "":
			return errors.New(ev.Error)
		case ev.Result != nil:
			return json.Unmarshal(ev.Result, out)
		case progress != nil:
			progress(ev.Done, ev.Total)
		}
	}
}

// orCanceled returns ctx's error once ctx has ended, so that callers can
// tell an interrupted call (errors.Is context.Canceled) from a failed one
// whatever the transport made of it.
func orCanceled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// SubmitJob offers a job to the network.
func (c *Client) SubmitJob(ctx context.Context, spec job.Spec) (string, error) {
	var out SubmitResponse
	return out.ID, c.do(ctx, http.MethodPost, "/api/v1/jobs", spec, &out)
}

// Jobs lists this node's jobs.
func (c *Client) Jobs(ctx context.Context) ([]job.Record, error) {
	var out []job.Record
	return out, c.do(ctx, http.MethodGet, "/api/v1/jobs", nil, &out)
}

// Job returns one job's record.
func (c *Client) Job(ctx context.Context, id string) (job.Record, error) {
	var out job.Record
	return out, c.do(ctx, http.MethodGet, "/api/v1/jobs/"+id, nil, &out)
}

// JobStatus returns one of this node's jobs with the currency of its
// payouts.
func (c *Client) JobStatus(ctx context.Context, id string) (JobStatus, error) {
	var out JobStatus
	return out, c.do(ctx, http.MethodGet, "/api/v1/jobs/"+id, nil, &out)
}

// CancelJob withdraws one of this node's jobs.
func (c *Client) CancelJob(ctx context.Context, id, reason string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/jobs/"+id+"/cancel", CancelRequest{Reason: reason}, nil)
}
