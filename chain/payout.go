package chain

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/programs/memo"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/gagliardetto/solana-go/programs/token"
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

// normalize checks payouts and merges repeated recipients, so that a
// recipient gets one transfer; the order of first appearance is kept.
func normalize(payouts []Payout) ([]Payout, error) {
	if len(payouts) == 0 {
		return nil, errors.New("chain: no payouts")
	}
	idx := map[solana.PublicKey]int{}
	var out []Payout
	for i, p := range payouts {
		if p.Recipient.IsZero() {
			return nil, fmt.Errorf("chain: payout %d has no recipient", i)
		}
		if p.Amount == 0 {
			return nil, fmt.Errorf("chain: payout %d to %s is zero", i, p.Recipient)
		}
		if j, ok := idx[p.Recipient]; ok {
			if out[j].Amount+p.Amount < out[j].Amount {
				return nil, fmt.Errorf("chain: payouts to %s overflow", p.Recipient)
			}
			out[j].Amount += p.Amount
			continue
		}
		idx[p.Recipient] = len(out)
		out = append(out, p)
	}
	return out, nil
}

// batch is the payouts of one transaction and its instructions.
type batch struct {
	payouts []Payout
	creates int // new associated token accounts
	ixs     []solana.Instruction
}

// splInfo describes the mint of an SPL payout.
type splInfo struct {
	mint     solana.PublicKey
	decimals uint8
	source   solana.PublicKey // the wallet's associated token account
}

// plan turns payouts into transactions' instructions, filling each
// transaction with payees until the next would exceed MaxTxSize (measured
// on the serialized transaction), so equal-sized payees take the fewest
// transactions. missing says which recipients need a token account
// created (SPL only).
func (c *Client) plan(memoText string, payouts []Payout, spl *splInfo, missing map[solana.PublicKey]bool) ([]batch, error) {
	order := payouts
	if spl != nil {
		// Payees that need an account are bigger; packing them first keeps
		// the count of transactions minimal (first-fit decreasing).
		order = append([]Payout(nil), payouts...)
		sort.SliceStable(order, func(i, j int) bool { return missing[order[i].Recipient] && !missing[order[j].Recipient] })
	}
	memoIx := solana.NewInstruction(memo.ProgramID, solana.AccountMetaSlice{solana.Meta(c.Address()).SIGNER()}, []byte(memoText))
	var out []batch
	cur := batch{ixs: []solana.Instruction{memoIx}}
	for _, p := range order {
		ixs, create, err := c.payoutIxs(p, spl, missing[p.Recipient])
		if err != nil {
			return nil, err
		}
		try := append(append([]solana.Instruction(nil), cur.ixs...), ixs...)
		size, err := c.txSize(try)
		if err != nil {
			return nil, err
		}
		if size > MaxTxSize && len(cur.payouts) > 0 {
			out = append(out, cur)
			cur = batch{ixs: []solana.Instruction{memoIx}}
			try = append([]solana.Instruction{memoIx}, ixs...)
			if size, err = c.txSize(try); err != nil {
				return nil, err
			}
		}
		if size > MaxTxSize {
			return nil, fmt.Errorf("chain: one payout to %s needs %d bytes, over the %d-byte limit: shorten the job ID or result CID", p.Recipient, size, MaxTxSize)
		}
		cur.ixs = try
		cur.payouts = append(cur.payouts, p)
		if create {
			cur.creates++
		}
	}
	return append(out, cur), nil
}

func (c *Client) payoutIxs(p Payout, spl *splInfo, missing bool) ([]solana.Instruction, bool, error) {
	if spl == nil {
		ix, err := system.NewTransferInstruction(p.Amount, c.Address(), p.Recipient).ValidateAndBuild()
		if err != nil {
			return nil, false, fmt.Errorf("transfer to %s: %w", p.Recipient, err)
		}
		return []solana.Instruction{ix}, false, nil
	}
	dest, _, err := solana.FindAssociatedTokenAddress(p.Recipient, spl.mint)
	if err != nil {
		return nil, false, fmt.Errorf("token account of %s: %w", p.Recipient, err)
	}
	var ixs []solana.Instruction
	if missing {
		ixs = append(ixs, createATAIdempotent(c.FeePayer(), p.Recipient, spl.mint, dest))
	}
	ix, err := token.NewTransferCheckedInstruction(p.Amount, spl.decimals, spl.source, spl.mint, dest, c.Address(), nil).ValidateAndBuild()
	if err != nil {
		return nil, false, fmt.Errorf("token transfer to %s: %w", p.Recipient, err)
	}
	return append(ixs, ix), missing, nil
}

// createATAIdempotent is the Associated Token Account program's
// CreateIdempotent instruction (index 1), which solana-go v1.14 lacks: it
// succeeds when the account already exists, so a resent or re-signed
// transaction cannot fail because an earlier one created it.
func createATAIdempotent(payer, wallet, mint, ata solana.PublicKey) solana.Instruction {
	return solana.NewInstruction(solana.SPLAssociatedTokenAccountProgramID, solana.AccountMetaSlice{
		solana.Meta(payer).WRITE().SIGNER(),
		solana.Meta(ata).WRITE(),
		solana.Meta(wallet),
		solana.Meta(mint),
		solana.Meta(solana.SystemProgramID),
		solana.Meta(solana.TokenProgramID),
	}, []byte{1})
}

// txSize is the serialized size of a transaction of ixs: the message
// (whose size does not depend on the blockhash) plus its signatures.
func (c *Client) txSize(ixs []solana.Instruction) (int, error) {
	tx, err := solana.NewTransaction(ixs, solana.Hash{}, solana.TransactionPayer(c.FeePayer()))
	if err != nil {
		return 0, fmt.Errorf("build transaction: %w", err)
	}
	msg, err := tx.Message.MarshalBinary()
	if err != nil {
		return 0, fmt.Errorf("encode transaction: %w", err)
	}
	n := int(tx.Message.Header.NumRequiredSignatures)
	return len(msg) + shortvecLen(n) + 64*n, nil
}

func shortvecLen(n int) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], uint64(n))
}

// mintInfo reads the mint's decimals and checks it is an SPL Token mint.
func (c *Client) mintInfo(ctx context.Context, mint solana.PublicKey) (*splInfo, error) {
	acc, err := call(ctx, c, "getAccountInfo", func(ctx context.Context) (*rpc.GetAccountInfoResult, error) {
		return c.rpc.GetAccountInfoWithOpts(ctx, mint, &rpc.GetAccountInfoOpts{Commitment: c.cfg.commitment()})
	})
	if err != nil {
		if errors.Is(err, rpc.ErrNotFound) {
			return nil, fmt.Errorf("chain.mint %s: no such account on %s", mint, c.cfg.RPC)
		}
		return nil, fmt.Errorf("chain.mint %s: %w", mint, err)
	}
	data := acc.Value.Data.GetBinary()
	if acc.Value.Owner != solana.TokenProgramID || len(data) != 82 {
		return nil, fmt.Errorf("chain.mint %s is not an SPL Token mint (owner %s, %d bytes)", mint, acc.Value.Owner, len(data))
	}
	src, _, err := solana.FindAssociatedTokenAddress(c.Address(), mint)
	if err != nil {
		return nil, fmt.Errorf("token account of %s: %w", c.Address(), err)
	}
	return &splInfo{mint: mint, decimals: data[44], source: src}, nil
}

// missingAccounts returns the recipients without an associated token account.
func (c *Client) missingAccounts(ctx context.Context, spl *splInfo, payouts []Payout) (map[solana.PublicKey]bool, error) {
	missing := map[solana.PublicKey]bool{}
	for start := 0; start < len(payouts); start += 100 {
		chunk := payouts[start:min(start+100, len(payouts))]
		keys := make([]solana.PublicKey, len(chunk))
		for i, p := range chunk {
			ata, _, err := solana.FindAssociatedTokenAddress(p.Recipient, spl.mint)
			if err != nil {
				return nil, fmt.Errorf("token account of %s: %w", p.Recipient, err)
			}
			keys[i] = ata
		}
		out, err := call(ctx, c, "getMultipleAccounts", func(ctx context.Context) (*rpc.GetMultipleAccountsResult, error) {
			return c.rpc.GetMultipleAccountsWithOpts(ctx, keys, &rpc.GetMultipleAccountsOpts{Commitment: c.cfg.commitment()})
		})
		if err != nil {
			return nil, fmt.Errorf("look up token accounts: %w", err)
		}
		for i, acc := range out.Value {
			if acc == nil {
				missing[chunk[i].Recipient] = true
			}
		}
	}
	return missing, nil
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

// checkFunds refuses a payout the wallet (or fee payer) cannot cover:
// amounts, every transaction's fee and the rent of new token accounts.
func (c *Client) checkFunds(ctx context.Context, spl *splInfo, batches []batch, txs []*solana.Transaction) error {
	var fees, creates, amount uint64
	payees := 0
	for i, tx := range txs {
		fee, err := c.fee(ctx, tx)
		if err != nil {
			return err
		}
		fees += fee
		creates += uint64(batches[i].creates)
		for _, p := range batches[i].payouts {
			if amount+p.Amount < amount {
				return fmt.Errorf("chain: payouts add up to more than %d", uint64(math.MaxUint64))
			}
			amount += p.Amount
			payees++
		}
	}
	var rent uint64
	if creates > 0 {
		per, err := c.rent(ctx, tokenAccountSize)
		if err != nil {
			return err
		}
		rent = per * creates
	}
	// A system account must end with zero or at least this many lamports.
	minBalance, err := c.rent(ctx, 0)
	if err != nil {
		return err
	}
	payerNeeds, detail := fees+rent, fmt.Sprintf("%d fees + %d rent for %d new token accounts", fees, rent, creates)
	if spl == nil {
		if err := c.checkNewAccounts(ctx, batches, minBalance); err != nil {
			return err
		}
		if c.FeePayer() == c.Address() {
			payerNeeds += amount
			detail = fmt.Sprintf("%d payouts + %d fees", amount, fees)
		} else if err := c.needLamports(ctx, c.Address(), amount, fmt.Sprintf("%d payouts", amount), minBalance); err != nil {
			return err
		}
	} else {
		have, err := c.TokenBalance(ctx, spl.mint, c.Address())
		if err != nil {
			return err
		}
		if have < amount {
			return &InsufficientFundsError{Account: c.Address(), Unit: "base units of " + spl.mint.String(),
				Have: have, Need: amount, Detail: fmt.Sprintf("%d payees", payees)}
		}
	}
	return c.needLamports(ctx, c.FeePayer(), payerNeeds, detail, minBalance)
}

// fee is what the cluster charges for tx's message.
func (c *Client) fee(ctx context.Context, tx *solana.Transaction) (uint64, error) {
	out, err := call(ctx, c, "getFeeForMessage", func(ctx context.Context) (*rpc.GetFeeForMessageResult, error) {
		return c.rpc.GetFeeForMessage(ctx, tx.Message.ToBase64(), c.cfg.commitment())
	})
	if err != nil {
		return 0, fmt.Errorf("fee for transaction: %w", err)
	}
	if out.Value == nil {
		return 0, fmt.Errorf("fee for transaction: blockhash unknown to %s", c.cfg.RPC)
	}
	return *out.Value, nil
}

// RentExemptMinimum is the least balance the chain lets an account of
// size bytes hold (0 bytes: a plain wallet, which a SOL payout may open).
func (c *Client) RentExemptMinimum(ctx context.Context, size uint64) (uint64, error) {
	return c.rent(ctx, size)
}

func (c *Client) rent(ctx context.Context, size uint64) (uint64, error) {
	n, err := call(ctx, c, "getMinimumBalanceForRentExemption", func(ctx context.Context) (uint64, error) {
		return c.rpc.GetMinimumBalanceForRentExemption(ctx, size, c.cfg.commitment())
	})
	if err != nil {
		return 0, fmt.Errorf("rent-exempt minimum for %d bytes: %w", size, err)
	}
	return n, nil
}

// checkNewAccounts refuses SOL payouts that would open a recipient account
// below the rent-exempt minimum: the whole transaction would be rejected.
func (c *Client) checkNewAccounts(ctx context.Context, batches []batch, minBalance uint64) error {
	var small []Payout
	for _, b := range batches {
		for _, p := range b.payouts {
			if p.Amount < minBalance {
				small = append(small, p)
			}
		}
	}
	for start := 0; start < len(small); start += 100 {
		chunk := small[start:min(start+100, len(small))]
		keys := make([]solana.PublicKey, len(chunk))
		for i, p := range chunk {
			keys[i] = p.Recipient
		}
		out, err := call(ctx, c, "getMultipleAccounts", func(ctx context.Context) (*rpc.GetMultipleAccountsResult, error) {
			return c.rpc.GetMultipleAccountsWithOpts(ctx, keys, &rpc.GetMultipleAccountsOpts{Commitment: c.cfg.commitment()})
		})
		if err != nil {
			return fmt.Errorf("look up recipients: %w", err)
		}
		for i, acc := range out.Value {
			if acc == nil || acc.Lamports+chunk[i].Amount < minBalance {
				return fmt.Errorf("%w: %d lamports to %s would leave it with less than %d lamports, which the chain rejects; pay at least that much or pay in a token",
					ErrBelowRent, chunk[i].Amount, chunk[i].Recipient, minBalance)
			}
		}
	}
	return nil
}

// needLamports checks that who can spend need lamports and be left with
// zero or at least minBalance, as the runtime requires.
func (c *Client) needLamports(ctx context.Context, who solana.PublicKey, need uint64, detail string, minBalance uint64) error {
	have, err := c.lamports(ctx, who)
	if err != nil {
		return err
	}
	if have < need {
		return &InsufficientFundsError{Account: who, Unit: "lamports", Have: have, Need: need, Detail: detail}
	}
	if left := have - need; left > 0 && left < minBalance {
		return &InsufficientFundsError{Account: who, Unit: "lamports", Have: have, Need: need + minBalance,
			Detail: fmt.Sprintf("%s + %d to stay rent-exempt", detail, minBalance)}
	}
	return nil
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
