package chain

import (
	"context"
	"errors"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/rpc/ws"
)

// wsRetry is how long after a websocket failure the client polls only,
// before it tries to connect again.
const wsRetry = 30 * time.Second

// subscription wakes a waiter when a signature reaches the commitment. A
// nil subscription (no websocket) just waits out the poll interval.
type subscription struct {
	c   *Client
	wsc *ws.Client
	sub *ws.SignatureSubscription
}

// subscribe asks the websocket (chain.ws) to report sig. Confirmation does
// not depend on it: getSignatureStatuses is still polled, so a websocket
// that is down or drops notifications only makes waiting slower.
func (c *Client) subscribe(ctx context.Context, sig solana.Signature) *subscription {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	select {
	case <-c.closed:
		return nil
	default:
	}
	if c.wsc == nil {
		if !c.wsFailed.IsZero() && time.Since(c.wsFailed) < wsRetry {
			return nil
		}
		dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.Std())
		wsc, err := ws.Connect(dctx, c.cfg.WS)
		cancel()
		if err != nil {
			c.wsFailed = time.Now()
			c.log.Warn("websocket unavailable; polling transaction status", "url", c.cfg.WS, "err", err)
			return nil
		}
		c.wsc, c.wsFailed = wsc, time.Time{}
	}
	sub, err := c.wsc.SignatureSubscribe(sig, c.cfg.commitment())
	if err != nil {
		c.dropWS(c.wsc, err)
		return nil
	}
	return &subscription{c: c, wsc: c.wsc, sub: sub}
}

// dropWS closes a failed websocket client; the caller holds wsMu.
func (c *Client) dropWS(wsc *ws.Client, err error) {
	if c.wsc != wsc || wsc == nil {
		return
	}
	c.log.Warn("websocket failed; polling transaction status", "url", c.cfg.WS, "err", err)
	wsc.Close()
	c.wsc, c.wsFailed = nil, time.Now()
}

// wait returns after d, or earlier when the signature is reported.
func (s *subscription) wait(ctx context.Context, d time.Duration) error {
	if s == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := s.sub.Recv(wctx)
	switch {
	case err == nil, ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded):
		return nil
	default:
		s.c.wsMu.Lock()
		s.c.dropWS(s.wsc, err)
		s.c.wsMu.Unlock()
		s.sub = nil
		return nil
	}
}

func (s *subscription) close() {
	if s != nil && s.sub != nil {
		s.sub.Unsubscribe()
	}
}

// await is sleep, cut short by a subscription's notification.
func (c *Client) await(ctx context.Context, s *subscription, d time.Duration) error {
	if s == nil || s.sub == nil {
		return c.sleep(ctx, d)
	}
	start := time.Now()
	if err := s.wait(ctx, d); err != nil {
		return err
	}
	if s.sub == nil { // the websocket broke: wait out the rest by the clock
		return c.sleep(ctx, d-time.Since(start))
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return ErrClosed
	default:
		return nil
	}
}
