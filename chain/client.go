// Package chain settles VFT jobs on Solana: a wallet client (Client),
// payouts in SOL or an SPL token packed into as few transactions as fit
// (Payout), a crash-safe journal that records every payout before it is
// sent, so that a payout is never made twice and never forgotten (Journal,
// whose Settle is the entry point), and escrow under an SPL Token multisig
// (OpenEscrow, GetEscrow, ReleaseTx, SignRelease, and the journaled
// Journal.RecordRelease / FinishRelease; package escrow collects the
// approvals between nodes).
//
// The package knows payouts (recipient, amount) for a job ID and result CID,
// not the job market; it must not import job/ or node/.
package chain

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/rpc"
	"github.com/gagliardetto/solana-go/rpc/jsonrpc"
	"github.com/gagliardetto/solana-go/rpc/ws"

	"github.com/vft-network/vft/identity"
)

var (
	// ErrUnreachable means the RPC server did not answer after all retries.
	ErrUnreachable = errors.New("chain: RPC server unreachable")
	// ErrInsecureKeypair means a keypair file is readable by other users.
	ErrInsecureKeypair = errors.New("chain: keypair file is readable by other users")
	// ErrExpired means a transaction's blockhash expired before it landed.
	ErrExpired = errors.New("chain: blockhash expired before the transaction landed")
	// ErrClosed means the client was used after Close.
	ErrClosed = errors.New("chain: client closed")
)

// Client talks to one Solana RPC endpoint on behalf of one wallet.
type Client struct {
	cfg      Config
	rpc      *rpc.Client
	http     *http.Transport // ours, so Close can drop its idle connections
	wallet   solana.PrivateKey
	feePayer solana.PrivateKey
	mint     solana.PublicKey // zero: SOL
	log      *slog.Logger

	poll       time.Duration // status polling interval
	backoff    time.Duration // first retry delay
	maxBackoff time.Duration

	wsMu     sync.Mutex
	wsc      *ws.Client // nil until first needed, or after a failure
	wsFailed time.Time

	decimalsMu sync.Mutex
	decimals   map[solana.PublicKey]uint8 // MintDecimals' cache

	closeOnce sync.Once
	closed    chan struct{}
}

// New builds a client from cfg. wallet is the node identity, used unless
// cfg.Keypair names a keypair file. New does no network I/O.
func New(cfg Config, wallet *identity.Key, log *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout.Std(), KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	c := &Client{
		cfg:        cfg,
		rpc:        rpc.NewWithCustomRPCClient(jsonrpc.NewClientWithOpts(cfg.RPC, &jsonrpc.RPCClientOpts{HTTPClient: &http.Client{Transport: tr}})),
		http:       tr,
		log:        log.With("component", "chain"),
		poll:       cfg.PollInterval.Std(),
		backoff:    100 * time.Millisecond,
		maxBackoff: 2 * time.Second,
		closed:     make(chan struct{}),
	}
	switch {
	case cfg.Keypair != "":
		k, err := LoadKeypair(cfg.Keypair)
		if err != nil {
			return nil, fmt.Errorf("chain.keypair: %w", err)
		}
		c.wallet = k
	case wallet != nil:
		c.wallet = solana.PrivateKey(wallet.PrivateKey())
	default:
		return nil, errors.New("chain: no wallet: set chain.keypair or give the node identity")
	}
	c.feePayer = c.wallet
	if cfg.FeePayer != "" {
		k, err := LoadKeypair(cfg.FeePayer)
		if err != nil {
			return nil, fmt.Errorf("chain.fee_payer: %w", err)
		}
		c.feePayer = k
	}
	if cfg.Mint != "" {
		mint, err := solana.PublicKeyFromBase58(cfg.Mint)
		if err != nil {
			return nil, fmt.Errorf("chain.mint: %w", err)
		}
		c.mint = mint
	}
	return c, nil
}

// LoadKeypair reads a Solana CLI keypair file (a JSON array of the 64 bytes
// seed‖public key). Like ssh, it refuses a file that group or others can
// read, because the key controls funds.
func LoadKeypair(path string) (solana.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read keypair: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run `chmod 600 %s`", ErrInsecureKeypair, path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keypair: %w", err)
	}
	var raw []byte
	var ints []int
	if err := json.Unmarshal(data, &ints); err != nil {
		return nil, fmt.Errorf("keypair %s is not a JSON array of bytes (the Solana CLI format)", path)
	}
	for i, v := range ints {
		if v < 0 || v > 255 {
			return nil, fmt.Errorf("keypair %s: value %d at position %d is not a byte", path, v, i)
		}
		raw = append(raw, byte(v))
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("keypair %s holds %d bytes, want %d", path, len(raw), ed25519.PrivateKeySize)
	}
	if priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize]); !priv.Equal(ed25519.PrivateKey(raw)) {
		return nil, fmt.Errorf("keypair %s: public key does not match the seed", path)
	}
	return solana.PrivateKey(raw), nil
}

// Address is the wallet that pays.
func (c *Client) Address() solana.PublicKey { return c.wallet.PublicKey() }

// FeePayer is the account that pays fees and new token accounts' rent.
func (c *Client) FeePayer() solana.PublicKey { return c.feePayer.PublicKey() }

// Mint is the SPL mint payouts are made in; the zero key means SOL.
func (c *Client) Mint() solana.PublicKey { return c.mint }

// RPC exposes the underlying solana-go client, for tools and tests.
func (c *Client) RPC() *rpc.Client { return c.rpc }

// Close releases the client's connections. It is safe to call twice.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		c.wsMu.Lock()
		if c.wsc != nil {
			c.wsc.Close()
			c.wsc = nil
		}
		c.wsMu.Unlock()
		err = c.rpc.Close()
		c.http.CloseIdleConnections()
	})
	return err
}

// Balance is the wallet's SOL balance in lamports.
func (c *Client) Balance(ctx context.Context) (uint64, error) {
	return c.lamports(ctx, c.Address())
}

// FeePayerBalance is the fee payer's SOL balance in lamports (the wallet's
// unless chain.fee_payer names another key).
func (c *Client) FeePayerBalance(ctx context.Context) (uint64, error) {
	return c.lamports(ctx, c.FeePayer())
}

func (c *Client) lamports(ctx context.Context, who solana.PublicKey) (uint64, error) {
	out, err := call(ctx, c, "getBalance", func(ctx context.Context) (*rpc.GetBalanceResult, error) {
		return c.rpc.GetBalance(ctx, who, c.cfg.commitment())
	})
	if err != nil {
		return 0, fmt.Errorf("balance of %s: %w", who, err)
	}
	return out.Value, nil
}

// TokenBalance is owner's balance of mint in base units, held in owner's
// associated token account; zero when that account does not exist.
func (c *Client) TokenBalance(ctx context.Context, mint, owner solana.PublicKey) (uint64, error) {
	ata, _, err := solana.FindAssociatedTokenAddress(owner, mint)
	if err != nil {
		return 0, fmt.Errorf("token account of %s: %w", owner, err)
	}
	out, err := call(ctx, c, "getTokenAccountBalance", func(ctx context.Context) (*rpc.GetTokenAccountBalanceResult, error) {
		return c.rpc.GetTokenAccountBalance(ctx, ata, c.cfg.commitment())
	})
	if err != nil {
		var re *jsonrpc.RPCError
		if errors.As(err, &re) && re.Code == -32602 {
			return 0, nil // no such account: nothing held
		}
		return 0, fmt.Errorf("token balance of %s (mint %s): %w", owner, mint, err)
	}
	var amount uint64
	if _, err := fmt.Sscan(out.Value.Amount, &amount); err != nil {
		return 0, fmt.Errorf("token balance of %s: bad amount %q", owner, out.Value.Amount)
	}
	return amount, nil
}

// Airdrop asks the cluster's faucet (localnet, devnet) for lamports and
// waits until the transfer reaches the configured commitment.
func (c *Client) Airdrop(ctx context.Context, lamports uint64) (solana.Signature, error) {
	sig, err := call(ctx, c, "requestAirdrop", func(ctx context.Context) (solana.Signature, error) {
		return c.rpc.RequestAirdrop(ctx, c.Address(), lamports, c.cfg.commitment())
	})
	if err != nil {
		return sig, fmt.Errorf("airdrop %d lamports: %w", lamports, err)
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.Std())
	defer cancel()
	if _, err := c.waitConfirmed(wctx, sig, 0); err != nil {
		return sig, fmt.Errorf("airdrop %d lamports: %w", lamports, err)
	}
	return sig, nil
}

// call runs one RPC request with the configured timeout. A request that did
// not get an answer from the server (refused, timed out, HTTP error) is
// retried with exponential backoff up to cfg.MaxRetries times; an answer,
// even an error, is returned at once. Every retried request here is safe
// to repeat: reads, and sends of already signed bytes.
func call[T any](ctx context.Context, c *Client, method string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	delay := c.backoff
	var last error
	for attempt := 0; attempt <= c.cfg.MaxRetries; attempt++ {
		select {
		case <-c.closed:
			return zero, ErrClosed
		default:
		}
		if attempt > 0 {
			c.log.Debug("retrying RPC request", "method", method, "attempt", attempt, "err", last)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return zero, fmt.Errorf("%s: %w (last error: %v)", method, ctx.Err(), last)
			case <-t.C:
			}
			delay = min(2*delay, c.maxBackoff)
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.Std())
		out, err := fn(rctx)
		cancel()
		if err == nil || answered(err) {
			return out, err
		}
		if ctx.Err() != nil {
			return zero, fmt.Errorf("%s: %w", method, ctx.Err())
		}
		last = err
	}
	return zero, fmt.Errorf("%w: %s at %s did not answer after %d attempts: %v; check chain.rpc and that the node is running",
		ErrUnreachable, method, c.cfg.RPC, c.cfg.MaxRetries+1, last)
}

// answered reports whether err came from the server (so retrying would
// get the same answer) rather than from the way to it.
func answered(err error) bool {
	var re *jsonrpc.RPCError
	return errors.As(err, &re) || errors.Is(err, rpc.ErrNotFound)
}

// reached reports whether a status has at least the wanted commitment.
func reached(got rpc.ConfirmationStatusType, want rpc.CommitmentType) bool {
	rank := map[string]int{"processed": 1, "confirmed": 2, "finalized": 3}
	return rank[string(got)] >= rank[string(want)]
}

// waitConfirmed polls the signature's status until it reaches the
// configured commitment. With lastValid > 0 it gives up with ErrExpired
// once the chain is past that block height without the transaction.
func (c *Client) waitConfirmed(ctx context.Context, sig solana.Signature, lastValid uint64) (uint64, error) {
	sub := c.subscribe(ctx, sig)
	defer sub.close()
	for i := 0; ; i++ {
		st, err := c.status(ctx, sig)
		if err != nil {
			return 0, err
		}
		if st != nil && reached(st.ConfirmationStatus, c.cfg.commitment()) {
			if st.Err != nil {
				return st.Slot, c.txError(ctx, sig, st.Err)
			}
			return st.Slot, nil
		}
		if st == nil && lastValid > 0 && i%4 == 3 {
			expired, err := c.expired(ctx, lastValid)
			if err != nil {
				return 0, err
			}
			if expired {
				// It may have landed between the two requests.
				if st, err := c.status(ctx, sig); err != nil || st != nil {
					continue
				}
				return 0, fmt.Errorf("%s: %w", sig, ErrExpired)
			}
		}
		if err := c.await(ctx, sub, c.poll); err != nil {
			return 0, fmt.Errorf("wait for %s: %w", sig, err)
		}
	}
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return ErrClosed
	case <-t.C:
		return nil
	}
}

// status looks a signature up in the whole history; nil means unknown.
func (c *Client) status(ctx context.Context, sig solana.Signature) (*rpc.SignatureStatusesResult, error) {
	all, err := c.statuses(ctx, []solana.Signature{sig})
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

func (c *Client) statuses(ctx context.Context, sigs []solana.Signature) ([]*rpc.SignatureStatusesResult, error) {
	out, err := call(ctx, c, "getSignatureStatuses", func(ctx context.Context) (*rpc.GetSignatureStatusesResult, error) {
		return c.rpc.GetSignatureStatuses(ctx, true, sigs...)
	})
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", sigs[0], err)
	}
	if len(out.Value) != len(sigs) {
		return nil, fmt.Errorf("status of %s: server returned %d results for %d signatures", sigs[0], len(out.Value), len(sigs))
	}
	return out.Value, nil
}

// expired reports whether a blockhash valid through lastValid can no longer
// be used. It asks for the finalized height, the lowest the cluster will
// stand by, so a transaction is never declared dead while it could land.
func (c *Client) expired(ctx context.Context, lastValid uint64) (bool, error) {
	h, err := call(ctx, c, "getBlockHeight", func(ctx context.Context) (uint64, error) {
		return c.rpc.GetBlockHeight(ctx, rpc.CommitmentFinalized)
	})
	if err != nil {
		return false, fmt.Errorf("block height: %w", err)
	}
	return h > lastValid, nil
}
