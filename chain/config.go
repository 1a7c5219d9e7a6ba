package chain

import (
	"fmt"
	"net/url"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/rpc"

	"github.com/vft-network/vft/internal/units"
)

// Config is the `[chain]` section of the node's config.
type Config struct {
	// Settle pays the workers of this node's accepted jobs on chain. Off,
	// results are accepted without payment (a private pool, tests).
	Settle bool `toml:"settle"`
	// Escrow locks the reward of every job this node submits in an SPL
	// multisig of the submitter and the workers before they start, instead
	// of paying from the wallet after (needs mint).
	Escrow bool `toml:"escrow"`
	// RPC is the Solana JSON-RPC endpoint (localnet, devnet or mainnet).
	RPC string `toml:"rpc"`
	// WS is the PubSub websocket endpoint: signatureSubscribe wakes a
	// waiting payout as soon as it lands. Status is also polled over RPC,
	// so payouts still confirm (more slowly) when the websocket is down.
	WS string `toml:"ws"`
	// Commitment is the level a payout waits for: processed, confirmed or
	// finalized.
	Commitment string `toml:"commitment"`
	// Keypair is a Solana CLI keypair file (JSON array of 64 bytes, mode
	// 0600) holding the wallet that pays; empty means the node identity.
	Keypair string `toml:"keypair"`
	// Mint is the SPL token mint (base58) payouts are made in; empty means SOL.
	Mint string `toml:"mint"`
	// FeePayer is a keypair file whose account pays transaction fees and
	// the rent of new token accounts; empty means the wallet pays.
	FeePayer string `toml:"fee_payer"`
	// Timeout bounds one RPC request.
	Timeout units.Duration `toml:"timeout"`
	// MaxRetries is how many times a request that did not reach the RPC
	// server is retried, with exponential backoff, before giving up.
	MaxRetries int `toml:"max_retries"`
	// PollInterval is how often a sent transaction's status is asked for
	// while waiting for the commitment; public RPC servers rate-limit.
	PollInterval units.Duration `toml:"poll_interval"`
}

// DefaultConfig points at a localnet on the standard ports.
func DefaultConfig() Config {
	return Config{
		Settle:       true,
		RPC:          "http://127.0.0.1:8899",
		WS:           "ws://127.0.0.1:8900",
		Commitment:   string(rpc.CommitmentConfirmed),
		Timeout:      units.Duration(30 * time.Second),
		MaxRetries:   5,
		PollInterval: units.Duration(500 * time.Millisecond),
	}
}

// Validate reports the first bad value, named as a user would write it.
func (c Config) Validate() error {
	if c.Escrow && c.Mint == "" {
		return fmt.Errorf("chain.escrow needs an SPL token: set chain.mint")
	}
	if err := checkURL("chain.rpc", c.RPC, "http", "https"); err != nil {
		return err
	}
	if err := checkURL("chain.ws", c.WS, "ws", "wss"); err != nil {
		return err
	}
	switch rpc.CommitmentType(c.Commitment) {
	case rpc.CommitmentProcessed, rpc.CommitmentConfirmed, rpc.CommitmentFinalized:
	default:
		return fmt.Errorf("chain.commitment: %q is not a commitment level: use processed, confirmed or finalized", c.Commitment)
	}
	if c.Mint != "" {
		if _, err := solana.PublicKeyFromBase58(c.Mint); err != nil {
			return fmt.Errorf("chain.mint: %q is not a base58 Solana address (%v): give the SPL mint address, or leave it empty to pay in SOL", c.Mint, err)
		}
	}
	if c.Timeout.Std() <= 0 {
		return fmt.Errorf("chain.timeout: %s must be positive, e.g. \"30s\"", c.Timeout)
	}
	if c.PollInterval.Std() <= 0 {
		return fmt.Errorf("chain.poll_interval: %s must be positive, e.g. \"500ms\"", c.PollInterval)
	}
	if c.MaxRetries < 0 {
		return fmt.Errorf("chain.max_retries: %d must be zero or more", c.MaxRetries)
	}
	return nil
}

func checkURL(key, s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s: %q is not a URL: write it like %s://127.0.0.1:8899", key, s, schemes[0])
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return nil
		}
	}
	return fmt.Errorf("%s: %q has scheme %q, want %s or %s", key, s, u.Scheme, schemes[0], schemes[1])
}

func (c Config) commitment() rpc.CommitmentType { return rpc.CommitmentType(c.Commitment) }
