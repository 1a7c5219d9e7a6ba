package chain

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/rpc"
	"github.com/gagliardetto/solana-go/rpc/jsonrpc"
)

// MaxTxSize is Solana's packet limit for one serialized transaction.
const MaxTxSize = 1232

// tokenAccountSize is the size of an SPL token account, whose rent a new
// associated token account costs.
const tokenAccountSize = 165

var (
	// ErrInsufficientFunds is wrapped by *InsufficientFundsError.
	ErrInsufficientFunds = errors.New("chain: insufficient funds")
	// ErrBelowRent means a SOL payout would open an account with less than
	// the rent-exempt minimum, which the runtime rejects.
	ErrBelowRent = errors.New("chain: payout below the rent-exempt minimum")
)

// Payout is one payment of a job: Amount in the smallest unit (lamports, or
// the mint's base units) to Recipient's wallet.
type Payout struct {
	Recipient solana.PublicKey `json:"recipient"`
	Amount    uint64           `json:"amount"`
}

// ParsePayout makes a Payout from a base58 address, as identity.WalletAddressOf returns.
func ParsePayout(recipient string, amount uint64) (Payout, error) {
	pk, err := solana.PublicKeyFromBase58(recipient)
	if err != nil {
		return Payout{}, fmt.Errorf("payout recipient %q is not a Solana address: %w", recipient, err)
	}
	return Payout{Recipient: pk, Amount: amount}, nil
}

// Memo is the memo every settlement transaction of a job carries.
func Memo(jobID, resultCID string) string { return "vft:1:" + jobID + ":" + resultCID }

// InsufficientFundsError says which account lacks how much, before anything was sent.
type InsufficientFundsError struct {
	Account solana.PublicKey
	Unit    string // "lamports" or "base units of <mint>"
	Have    uint64
	Need    uint64
	Detail  string // what Need is made of
}

// Missing is how much more Account needs.
func (e *InsufficientFundsError) Missing() uint64 { return e.Need - e.Have }

func (e *InsufficientFundsError) Error() string {
	return fmt.Sprintf("chain: insufficient funds: %s has %d %s but the payout needs %d (%s): missing %d %s",
		e.Account, e.Have, e.Unit, e.Need, e.Detail, e.Missing(), e.Unit)
}

func (e *InsufficientFundsError) Unwrap() error { return ErrInsufficientFunds }

// TxError is a transaction the chain rejected, with the program's error and logs.
type TxError struct {
	Signature solana.Signature
	Message   string
	Err       any // the chain's error value, e.g. {"InstructionError":[2,{"Custom":1}]}
	Logs      []string
}

func (e *TxError) Error() string {
	s := fmt.Sprintf("chain: transaction %s rejected: %s", e.Signature, e.Message)
	if e.Err != nil {
		s += fmt.Sprintf(" (%v)", e.Err)
	}
	if len(e.Logs) > 0 {
		s += "; logs: " + strings.Join(e.Logs, " | ")
	}
	return s
}

// signed is one transaction ready to send.
type signed struct {
	raw       []byte
	sig       solana.Signature
	lastValid uint64
}

// prepare plans, checks funds for, and signs the transactions paying
// payouts. Nothing is sent. Insufficient funds are an
// *InsufficientFundsError.
func (c *Client) prepare(ctx context.Context, memoText string, payouts []Payout) ([]batch, []signed, error) {
	var spl *splInfo
	var missing map[solana.PublicKey]bool
	if !c.mint.IsZero() {
		var err error
		if spl, err = c.mintInfo(ctx, c.mint); err != nil {
			return nil, nil, err
		}
		if missing, err = c.missingAccounts(ctx, spl, payouts); err != nil {
			return nil, nil, err
		}
	}
	batches, err := c.plan(memoText, payouts, spl, missing)
	if err != nil {
		return nil, nil, err
	}
	bh, err := call(ctx, c, "getLatestBlockhash", func(ctx context.Context) (*rpc.GetLatestBlockhashResult, error) {
		return c.rpc.GetLatestBlockhash(ctx, c.cfg.commitment())
	})
	if err != nil {
		return nil, nil, fmt.Errorf("latest blockhash: %w", err)
	}
	txs := make([]*solana.Transaction, len(batches))
	for i, b := range batches {
		if txs[i], err = solana.NewTransaction(b.ixs, bh.Value.Blockhash, solana.TransactionPayer(c.FeePayer())); err != nil {
			return nil, nil, fmt.Errorf("build transaction: %w", err)
		}
	}
	if err := c.checkFunds(ctx, spl, batches, txs); err != nil {
		return nil, nil, err
	}
	out := make([]signed, len(txs))
	for i, tx := range txs {
		s, err := c.sign(tx, bh.Value.LastValidBlockHeight)
		if err != nil {
			return nil, nil, err
		}
		out[i] = s
	}
	return batches, out, nil
}

// ownKey returns this client's private key for pk (the wallet or the fee
// payer), or nil: what solana-go's Transaction.Sign asks for.
func (c *Client) ownKey(pk solana.PublicKey) *solana.PrivateKey {
	switch pk {
	case c.wallet.PublicKey():
		return &c.wallet
	case c.feePayer.PublicKey():
		return &c.feePayer
	}
	return nil
}

func (c *Client) sign(tx *solana.Transaction, lastValid uint64) (signed, error) {
	tx.Signatures = nil
	if _, err := tx.Sign(c.ownKey); err != nil {
		return signed{}, fmt.Errorf("sign transaction: %w", err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		return signed{}, fmt.Errorf("encode transaction: %w", err)
	}
	if len(raw) > MaxTxSize {
		return signed{}, fmt.Errorf("chain: transaction is %d bytes, over the %d-byte limit", len(raw), MaxTxSize)
	}
	return signed{raw: raw, sig: tx.Signatures[0], lastValid: lastValid}, nil
}

// resign gives raw's message a new blockhash and signs it again: the same
// instructions, a new signature.
func (c *Client) resign(ctx context.Context, raw []byte) (signed, error) {
	tx, err := solana.TransactionFromBytes(raw)
	if err != nil {
		return signed{}, fmt.Errorf("decode journaled transaction: %w", err)
	}
	bh, err := call(ctx, c, "getLatestBlockhash", func(ctx context.Context) (*rpc.GetLatestBlockhashResult, error) {
		return c.rpc.GetLatestBlockhash(ctx, c.cfg.commitment())
	})
	if err != nil {
		return signed{}, fmt.Errorf("latest blockhash: %w", err)
	}
	tx.Message.RecentBlockhash = bh.Value.Blockhash
	return c.sign(tx, bh.Value.LastValidBlockHeight)
}

// send submits signed bytes with preflight. A transaction that was already
// processed counts as sent. A rejection is a *TxError with the logs.
func (c *Client) send(ctx context.Context, s signed) error {
	_, err := call(ctx, c, "sendTransaction", func(ctx context.Context) (solana.Signature, error) {
		return c.rpc.SendRawTransactionWithOpts(ctx, s.raw, rpc.TransactionOpts{PreflightCommitment: c.cfg.commitment()})
	})
	if err == nil {
		return nil
	}
	var re *jsonrpc.RPCError
	if !errors.As(err, &re) {
		return fmt.Errorf("send %s: %w", s.sig, err)
	}
	if strings.Contains(re.Message, "already been processed") {
		return nil
	}
	te := &TxError{Signature: s.sig, Message: re.Message}
	if data, ok := re.Data.(map[string]any); ok {
		te.Err = data["err"]
		if logs, ok := data["logs"].([]any); ok {
			for _, l := range logs {
				te.Logs = append(te.Logs, fmt.Sprint(l))
			}
		}
	}
	return te
}

// blockhashNotFound reports a preflight that failed only because the
// blockhash is unknown (expired, or not yet seen by this RPC node).
func blockhashNotFound(err error) bool {
	var te *TxError
	return errors.As(err, &te) && strings.Contains(te.Message, "Blockhash not found")
}

// txError fetches a landed, failed transaction's logs.
func (c *Client) txError(ctx context.Context, sig solana.Signature, chainErr any) error {
	te := &TxError{Signature: sig, Message: "failed on chain", Err: chainErr}
	got, err := call(ctx, c, "getTransaction", func(ctx context.Context) (*rpc.GetTransactionResult, error) {
		return c.rpc.GetTransaction(ctx, sig, &rpc.GetTransactionOpts{Commitment: c.cfg.commitment()})
	})
	if err == nil && got.Meta != nil {
		te.Logs = got.Meta.LogMessages
	}
	return te
}
