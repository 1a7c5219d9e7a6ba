package escrow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bin "github.com/gagliardetto/binary"
	"github.com/gagliardetto/solana-go"

	"github.com/vft-network/vft/chain"
)

// ErrRefused is wrapped by every reason a signer refuses a request.
var ErrRefused = errors.New("escrow: signature refused")

// SPL Token TransferChecked and ATA CreateIdempotent, the only instructions
// besides the memo that a release may hold.
const (
	transferChecked     = 12
	transferCheckedSize = 1 + 8 + 1
	ataCreateIdempotent = 1
)

// checkRequest takes a request's transaction message apart and returns it
// if it does exactly what the request says, for this job's escrow e, and
// nothing else: TransferChecked out of e's token account with e's multisig
// as authority, to each payee's associated token account in e's mint, the
// amounts of req.Payouts; idempotent creates of those accounts; one memo
// vft:1:<job>:<result or refund>. self may appear only as a read-only
// signer of those transfers, so its signature spends nothing of its own.
// A refund must pay the submitter only. It does not read the chain.
func checkRequest(req *SignRequest, e *chain.Escrow, submitter, self solana.PublicKey) (*solana.Message, error) {
	switch req.Kind {
	case KindRelease:
		if req.ResultCID == "" || req.ResultCID == KindRefund || req.ResultCID == "escrow" {
			return nil, fmt.Errorf("release of %s names result %q", req.Job, req.ResultCID)
		}
	case KindRefund:
		if req.ResultCID != "" {
			return nil, fmt.Errorf("refund of %s names a result (%q)", req.Job, req.ResultCID)
		}
		if len(req.Payouts) != 1 || req.Payouts[0].Recipient != submitter {
			return nil, fmt.Errorf("refund of %s must pay the submitter %s alone, it pays %v", req.Job, submitter, req.Payouts)
		}
	default:
		return nil, fmt.Errorf("request kind %q: want %q or %q", req.Kind, KindRelease, KindRefund)
	}
	want := map[solana.PublicKey]uint64{}
	for _, p := range req.Payouts {
		if p.Amount == 0 {
			return nil, fmt.Errorf("payout of 0 to %s", p.Recipient)
		}
		if _, dup := want[p.Recipient]; dup {
			return nil, fmt.Errorf("%s is paid twice in the request", p.Recipient)
		}
		want[p.Recipient] = p.Amount
	}
	if len(want) == 0 {
		return nil, errors.New("request pays nobody")
	}
	owner := map[solana.PublicKey]solana.PublicKey{} // payee token account -> payee
	for to := range want {
		ata, _, err := solana.FindAssociatedTokenAddress(to, e.Mint)
		if err != nil {
			return nil, fmt.Errorf("token account of %s: %w", to, err)
		}
		owner[ata] = to
	}

	msg, err := decodeMessage(req.Tx)
	if err != nil {
		return nil, err
	}
	keys := msg.AccountKeys
	selfAt := slices.Index(keys, self)
	switch {
	case selfAt < 0:
		return nil, fmt.Errorf("this node (%s) is not asked to sign the transaction", self)
	case selfAt == 0:
		return nil, fmt.Errorf("the transaction makes this node (%s) its fee payer", self)
	case selfAt >= int(msg.Header.NumRequiredSignatures):
		return nil, fmt.Errorf("this node (%s) is not a signer of the transaction", self)
	case isWritable(msg, selfAt):
		return nil, fmt.Errorf("the transaction makes this node's account (%s) writable", self)
	}

	memoWant := chain.Memo(req.Job, req.tag())
	memos := 0
	paid := map[solana.PublicKey]uint64{}
	for i, ix := range msg.Instructions {
		accs, err := resolve(msg, ix)
		if err != nil {
			return nil, fmt.Errorf("instruction %d: %w", i, err)
		}
		prog := keys[ix.ProgramIDIndex]
		// Where self may appear: as a multisig signer at the end of a
		// transfer, or as the wallet whose token account is created (its
		// signature is not needed there, so it authorises nothing).
		selfOK := func(k int) bool { return false }
		switch prog {
		case solana.MemoProgramID:
			if string(ix.Data) != memoWant {
				return nil, fmt.Errorf("memo %q, want %q", ix.Data, memoWant)
			}
			memos++
		case solana.SPLAssociatedTokenAccountProgramID:
			if err := checkCreate(accs, ix.Data, e, want); err != nil {
				return nil, fmt.Errorf("instruction %d: %w", i, err)
			}
			selfOK = func(k int) bool { return k == 2 }
		case solana.TokenProgramID:
			dest, amount, err := checkTransfer(accs, ix.Data, e)
			if err != nil {
				return nil, fmt.Errorf("instruction %d: %w", i, err)
			}
			to, ok := owner[dest]
			if !ok {
				return nil, fmt.Errorf("instruction %d transfers %d to %s, which is not the token account of a payee in the request", i, amount, dest)
			}
			if _, dup := paid[to]; dup {
				return nil, fmt.Errorf("instruction %d pays %s a second time", i, to)
			}
			paid[to] = amount
			selfOK = func(k int) bool { return k >= 4 }
		default:
			return nil, fmt.Errorf("instruction %d calls program %s, which a release must not", i, prog)
		}
		for k, a := range accs {
			if a == self && !selfOK(k) {
				return nil, fmt.Errorf("instruction %d uses this node's account %s as other than a multisig signer", i, self)
			}
		}
	}
	if memos != 1 {
		return nil, fmt.Errorf("%d memos, want exactly one %q", memos, memoWant)
	}
	for to, amount := range paid {
		if want[to] != amount {
			return nil, fmt.Errorf("the transaction pays %s %d, the request says %d", to, amount, want[to])
		}
	}
	for to, amount := range want {
		if _, ok := paid[to]; !ok {
			return nil, fmt.Errorf("the request pays %s %d, the transaction does not", to, amount)
		}
	}
	return msg, nil
}

// decodeMessage decodes a legacy message that must be in its one byte form
// (nothing appended). Versioned messages may load accounts from lookup
// tables, which cannot be checked without the chain: they are refused.
func decodeMessage(raw []byte) (*solana.Message, error) {
	if len(raw) == 0 || len(raw) > chain.MaxTxSize {
		return nil, fmt.Errorf("transaction message of %d bytes, want 1 to %d", len(raw), chain.MaxTxSize)
	}
	if raw[0]&0x80 != 0 {
		return nil, errors.New("versioned transaction messages are not accepted")
	}
	var msg solana.Message
	if err := msg.UnmarshalWithDecoder(bin.NewBinDecoder(raw)); err != nil {
		return nil, fmt.Errorf("transaction message: %w", err)
	}
	again, err := msg.MarshalBinary()
	if err != nil || !bytes.Equal(again, raw) {
		return nil, errors.New("transaction message is not in its canonical form")
	}
	if int(msg.Header.NumRequiredSignatures) > len(msg.AccountKeys) || len(msg.AccountKeys) == 0 {
		return nil, errors.New("transaction message header does not match its accounts")
	}
	return &msg, nil
}

// resolve returns an instruction's accounts, bounds-checked.
func resolve(msg *solana.Message, ix solana.CompiledInstruction) ([]solana.PublicKey, error) {
	n := len(msg.AccountKeys)
	if int(ix.ProgramIDIndex) >= n {
		return nil, fmt.Errorf("program index %d out of %d accounts", ix.ProgramIDIndex, n)
	}
	out := make([]solana.PublicKey, len(ix.Accounts))
	for i, a := range ix.Accounts {
		if int(a) >= n {
			return nil, fmt.Errorf("account index %d out of %d accounts", a, n)
		}
		out[i] = msg.AccountKeys[a]
	}
	return out, nil
}

// isWritable reads the message header the way the runtime does.
func isWritable(msg *solana.Message, i int) bool {
	h := msg.Header
	if i < int(h.NumRequiredSignatures) {
		return i < int(h.NumRequiredSignatures)-int(h.NumReadonlySignedAccounts)
	}
	return i < len(msg.AccountKeys)-int(h.NumReadonlyUnsignedAccounts)
}

// checkTransfer accepts TransferChecked out of e to a payee's token
// account, authorised by e's multisig and some of its signers, and returns
// the destination and the amount.
func checkTransfer(accs []solana.PublicKey, data []byte, e *chain.Escrow) (solana.PublicKey, uint64, error) {
	var none solana.PublicKey
	if len(data) != transferCheckedSize || data[0] != transferChecked {
		return none, 0, fmt.Errorf("token instruction %v is not TransferChecked", data[:min(len(data), 1)])
	}
	if len(accs) < 5 {
		return none, 0, fmt.Errorf("TransferChecked with %d accounts: a multisig transfer has at least 5", len(accs))
	}
	if accs[0] != e.Account {
		return none, 0, fmt.Errorf("transfer out of %s, not this job's escrow account %s", accs[0], e.Account)
	}
	if accs[1] != e.Mint {
		return none, 0, fmt.Errorf("transfer in mint %s, the escrow is in %s", accs[1], e.Mint)
	}
	if accs[3] != e.Multisig {
		return none, 0, fmt.Errorf("transfer authorised by %s, not the escrow's multisig %s", accs[3], e.Multisig)
	}
	for _, s := range accs[4:] {
		if !slices.Contains(e.Signers, s) {
			return none, 0, fmt.Errorf("transfer signed by %s, who is not a signer of the escrow", s)
		}
	}
	return accs[2], binary.LittleEndian.Uint64(data[1:9]), nil
}

// checkCreate accepts an idempotent create of a payee's token account in
// e's mint (paid by someone else: the fee payer).
func checkCreate(accs []solana.PublicKey, data []byte, e *chain.Escrow, payees map[solana.PublicKey]uint64) error {
	if len(data) != 1 || data[0] != ataCreateIdempotent || len(accs) != 6 {
		return fmt.Errorf("associated token account instruction %v with %d accounts is not CreateIdempotent", data, len(accs))
	}
	wallet, mint := accs[2], accs[3]
	if _, ok := payees[wallet]; !ok {
		return fmt.Errorf("creates a token account for %s, who is not paid", wallet)
	}
	if mint != e.Mint {
		return fmt.Errorf("creates a token account in mint %s, the escrow is in %s", mint, e.Mint)
	}
	if ata, _, err := solana.FindAssociatedTokenAddress(wallet, mint); err != nil || accs[1] != ata {
		return fmt.Errorf("creates %s, not the token account of %s", accs[1], wallet)
	}
	if accs[4] != solana.SystemProgramID || accs[5] != solana.TokenProgramID {
		return fmt.Errorf("creates a token account with programs %s, %s", accs[4], accs[5])
	}
	return nil
}
