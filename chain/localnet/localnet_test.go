package localnet

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	ata "github.com/gagliardetto/solana-go/programs/associated-token-account"
	computebudget "github.com/gagliardetto/solana-go/programs/compute-budget"
	"github.com/gagliardetto/solana-go/programs/memo"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/gagliardetto/solana-go/programs/token"
	"github.com/gagliardetto/solana-go/rpc"

	"github.com/gagliardetto/solana-go/rpc/jsonrpc"
	"github.com/gagliardetto/solana-go/rpc/ws"
	"github.com/vft-network/vft/chain"
)

const sol = solana.LAMPORTS_PER_SOL

// startLocalnet runs a server for the test and stops it at cleanup. It fails
// (never skips) when Node.js or the npm dependencies are missing.
func startLocalnet(t *testing.T, opts Options) (*Localnet, *rpc.Client) {
	t.Helper()
	if testing.Verbose() && opts.Log == nil {
		opts.Log = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	c := rpc.New(l.RPCURL())
	t.Cleanup(func() { _ = c.Close() })
	return l, c
}

func newKey(t *testing.T) solana.PrivateKey {
	t.Helper()
	k, err := solana.NewRandomPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fund airdrops lamports to a new key and waits until the airdrop landed.
func fund(t *testing.T, c *rpc.Client, lamports uint64) solana.PrivateKey {
	t.Helper()
	k := newKey(t)
	sig, err := c.RequestAirdrop(t.Context(), k.PublicKey(), lamports, rpc.CommitmentFinalized)
	if err != nil {
		t.Fatalf("requestAirdrop: %v", err)
	}
	if st := waitStatus(t, c, sig); st.Err != nil {
		t.Fatalf("airdrop failed: %v", st.Err)
	}
	return k
}

// waitStatus polls getSignatureStatuses until the transaction is finalized.
func waitStatus(t *testing.T, c *rpc.Client, sig solana.Signature) *rpc.SignatureStatusesResult {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.GetSignatureStatuses(t.Context(), true, sig)
		if err != nil {
			t.Fatalf("getSignatureStatuses: %v", err)
		}
		if st := out.Value[0]; st != nil && st.ConfirmationStatus == rpc.ConfirmationStatusFinalized {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("transaction %s not finalized after 10s", sig)
	return nil
}

func signedTx(t *testing.T, c *rpc.Client, payer solana.PrivateKey, signers []solana.PrivateKey, ixs ...solana.Instruction) *solana.Transaction {
	t.Helper()
	bh, err := c.GetLatestBlockhash(t.Context(), rpc.CommitmentFinalized)
	if err != nil {
		t.Fatalf("getLatestBlockhash: %v", err)
	}
	return signWith(t, bh.Value.Blockhash, payer, signers, ixs...)
}

func signWith(t *testing.T, blockhash solana.Hash, payer solana.PrivateKey, signers []solana.PrivateKey, ixs ...solana.Instruction) *solana.Transaction {
	t.Helper()
	tx, err := solana.NewTransaction(ixs, blockhash, solana.TransactionPayer(payer.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Sign(chain.KeyLookup(append([]solana.PrivateKey{payer}, signers...)...)); err != nil {
		t.Fatal(err)
	}
	return tx
}

func rpcError(t *testing.T, err error) *jsonrpc.RPCError {
	t.Helper()
	var re *jsonrpc.RPCError
	if !errors.As(err, &re) {
		t.Fatalf("want a JSON-RPC error, got %v", err)
	}
	return re
}

func TestAirdropAndBalance(t *testing.T) {
	_, c := startLocalnet(t, Options{})
	k := newKey(t)
	// Two identical requests must both land, with different signatures.
	var sigs []solana.Signature
	for range 2 {
		sig, err := c.RequestAirdrop(t.Context(), k.PublicKey(), 2*sol, rpc.CommitmentFinalized)
		if err != nil {
			t.Fatalf("requestAirdrop: %v", err)
		}
		if st := waitStatus(t, c, sig); st.Err != nil {
			t.Fatalf("airdrop failed: %v", st.Err)
		}
		sigs = append(sigs, sig)
	}
	if sigs[0] == sigs[1] {
		t.Fatal("two airdrops returned the same signature")
	}
	bal, err := c.GetBalance(t.Context(), k.PublicKey(), rpc.CommitmentFinalized)
	if err != nil {
		t.Fatal(err)
	}
	if bal.Value != 4*sol {
		t.Fatalf("balance = %d, want %d", bal.Value, 4*sol)
	}
	if bal.Context.Slot == 0 {
		t.Error("context.slot is 0")
	}
	found, err := c.GetSignaturesForAddress(t.Context(), k.PublicKey())
	if err != nil || len(found) != 2 || found[0].Signature != sigs[1] || found[1].Signature != sigs[0] {
		t.Fatalf("getSignaturesForAddress = %s, %v; want both airdrops, newest first", dump(found), err)
	}
}

func TestTransferConfirmed(t *testing.T) {
	l, c := startLocalnet(t, Options{})
	from := fund(t, c, 3*sol)
	to := newKey(t).PublicKey()

	wsc, err := ws.Connect(t.Context(), l.WSURL())
	if err != nil {
		t.Fatalf("ws connect: %v", err)
	}
	defer wsc.Close()

	tx := signedTx(t, c, from, nil, system.NewTransferInstruction(sol, from.PublicKey(), to).Build())
	sub, err := wsc.SignatureSubscribe(tx.Signatures[0], rpc.CommitmentFinalized)
	if err != nil {
		t.Fatalf("signatureSubscribe: %v", err)
	}
	defer sub.Unsubscribe()

	sig, err := c.SendTransaction(t.Context(), tx)
	if err != nil {
		t.Fatalf("sendTransaction: %v", err)
	}
	if sig != tx.Signatures[0] {
		t.Fatalf("sendTransaction returned %s, want the first signature %s", sig, tx.Signatures[0])
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	note, err := sub.Recv(ctx)
	if err != nil {
		t.Fatalf("signatureNotification: %v", err)
	}
	if note.Value.Err != nil || note.Context.Slot == 0 {
		t.Fatalf("signatureNotification = %+v, want success with a slot", note)
	}
	st := waitStatus(t, c, sig)
	if st.Err != nil || st.Slot != note.Context.Slot {
		t.Fatalf("status = %+v, want success in slot %d", st, note.Context.Slot)
	}

	const fee = 5000
	for _, tc := range []struct {
		key  solana.PublicKey
		want uint64
	}{{from.PublicKey(), 2*sol - fee}, {to, sol}} {
		bal, err := c.GetBalance(t.Context(), tc.key, "")
		if err != nil || bal.Value != tc.want {
			t.Errorf("balance of %s = %v, %v; want %d", tc.key, bal, err, tc.want)
		}
	}

	got, err := c.GetTransaction(t.Context(), sig, nil)
	if err != nil {
		t.Fatalf("getTransaction: %v", err)
	}
	if got.Slot != st.Slot || got.Meta.Err != nil || got.Meta.Fee != fee || got.BlockTime == nil {
		t.Fatalf("getTransaction: slot %d err %v fee %d blockTime %v", got.Slot, got.Meta.Err, got.Meta.Fee, got.BlockTime)
	}
	wantPre, wantPost := []uint64{3 * sol, 0, 1}, []uint64{2*sol - fee, sol, 1}
	if !equalU64(got.Meta.PreBalances, wantPre) || !equalU64(got.Meta.PostBalances, wantPost) {
		t.Errorf("balances pre %v post %v, want %v %v", got.Meta.PreBalances, got.Meta.PostBalances, wantPre, wantPost)
	}
	if len(got.Meta.LogMessages) == 0 || !strings.Contains(got.Meta.LogMessages[0], "11111111111111111111111111111111 invoke") {
		t.Errorf("logMessages = %q", got.Meta.LogMessages)
	}
	parsed, err := got.Transaction.GetTransaction()
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Message.AccountKeys[1] != to || len(parsed.Message.Instructions) != 1 || parsed.Signatures[0] != sig {
		t.Errorf("transaction.message = %+v", parsed.Message)
	}

	bin, err := c.GetTransaction(t.Context(), sig, &rpc.GetTransactionOpts{Encoding: solana.EncodingBase64})
	if err != nil {
		t.Fatalf("getTransaction base64: %v", err)
	}
	want, _ := tx.MarshalBinary()
	if !bytes.Equal(bin.Transaction.GetBinary(), want) {
		t.Error("getTransaction base64 does not return the bytes that were sent")
	}

	// A subscription made after the transaction landed is answered at once.
	late, err := wsc.SignatureSubscribe(sig, "")
	if err != nil {
		t.Fatal(err)
	}
	if note, err := late.Recv(ctx); err != nil || note.Value.Err != nil {
		t.Fatalf("late signatureNotification = %+v, %v", note, err)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRejectedTransactions(t *testing.T) {
	_, c := startLocalnet(t, Options{})
	payer := fund(t, c, sol)
	to := newKey(t).PublicKey()
	transfer := func(lamports uint64) solana.Instruction {
		return system.NewTransferInstruction(lamports, payer.PublicKey(), to).Build()
	}
	sent := signedTx(t, c, payer, nil, transfer(1000000))
	if _, err := c.SendTransaction(t.Context(), sent); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, sent.Signatures[0])

	for _, tc := range []struct {
		name     string
		tx       func() *solana.Transaction
		code     int
		msg      string
		wantLogs bool
	}{
		{"bad signature", func() *solana.Transaction {
			tx := signedTx(t, c, payer, nil, transfer(1000000))
			tx.Signatures[0][5] ^= 0xff
			return tx
		}, -32003, "Transaction signature verification failure", false},
		{"signed by another key", func() *solana.Transaction {
			tx := signedTx(t, c, payer, nil, transfer(1000000))
			other := newKey(t)
			forged := signedTx(t, c, other, nil, system.NewTransferInstruction(1000000, other.PublicKey(), to).Build())
			tx.Signatures[0] = forged.Signatures[0]
			return tx
		}, -32003, "Transaction signature verification failure", false},
		{"unknown blockhash", func() *solana.Transaction {
			return signWith(t, solana.Hash{1, 2, 3}, payer, nil, transfer(1000000))
		}, -32002, "Transaction simulation failed: Blockhash not found", false},
		{"insufficient funds", func() *solana.Transaction {
			return signedTx(t, c, payer, nil, transfer(5*sol))
		}, -32002, "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1", true},
		{"already processed", func() *solana.Transaction { return sent },
			-32002, "Transaction simulation failed: This transaction has already been processed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.SendTransaction(t.Context(), tc.tx())
			re := rpcError(t, err)
			if re.Code != tc.code || re.Message != tc.msg {
				t.Fatalf("error = %d %q, want %d %q", re.Code, re.Message, tc.code, tc.msg)
			}
			if tc.code == -32002 {
				data, _ := re.Data.(map[string]any)
				if data == nil || data["err"] == nil {
					t.Fatalf("error data = %v, want err", re.Data)
				}
				logs, _ := data["logs"].([]any)
				if tc.wantLogs && len(logs) == 0 {
					t.Errorf("error data has no logs: %v", data)
				}
			}
		})
	}
	bal, err := c.GetBalance(t.Context(), payer.PublicKey(), "")
	if err != nil || bal.Value != sol-1000000-5000 {
		t.Errorf("rejected transactions changed the balance: %v, %v", bal, err)
	}
}

// TestFees checks that meta.fee is what the runtime charged, with and
// without a priority fee, and that a transaction failing in execution lands
// (with its error, paying its fee) when preflight is skipped.
func TestFees(t *testing.T) {
	_, c := startLocalnet(t, Options{})
	ctx := t.Context()
	to := newKey(t).PublicKey()
	for _, tc := range []struct {
		name     string
		extra    []solana.Instruction
		amount   uint64
		wantFee  uint64
		wantFail bool
	}{
		{"base fee", nil, sol / 2, 5000, false},
		// 1_000_000 micro-lamports per CU x 300_000 CUs = 300_000 lamports.
		{"priority fee", []solana.Instruction{
			computebudget.NewSetComputeUnitLimitInstruction(300_000).Build(),
			computebudget.NewSetComputeUnitPriceInstruction(1_000_000).Build(),
		}, sol / 2, 5000 + 300_000, false},
		{"failed transfer lands", nil, 2 * sol, 5000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payer := fund(t, c, sol)
			ixs := append(tc.extra, system.NewTransferInstruction(tc.amount, payer.PublicKey(), to).Build())
			tx := signedTx(t, c, payer, nil, ixs...)
			sig, err := c.SendTransactionWithOpts(ctx, tx, rpc.TransactionOpts{SkipPreflight: true})
			if err != nil {
				t.Fatal(err)
			}
			st := waitStatus(t, c, sig)
			if (st.Err != nil) != tc.wantFail {
				t.Fatalf("status err = %v, want failure %v", st.Err, tc.wantFail)
			}
			got, err := c.GetTransaction(ctx, sig, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Meta.Fee != tc.wantFee {
				t.Errorf("meta.fee = %d, want %d", got.Meta.Fee, tc.wantFee)
			}
			spent := got.Meta.PreBalances[0] - got.Meta.PostBalances[0]
			wantSpent := tc.wantFee
			if !tc.wantFail {
				wantSpent += tc.amount
			}
			if spent != wantSpent {
				t.Errorf("payer spent %d, want %d", spent, wantSpent)
			}
			bal, _ := c.GetBalance(ctx, payer.PublicKey(), "")
			if bal.Value != sol-wantSpent {
				t.Errorf("balance = %d, want %d", bal.Value, sol-wantSpent)
			}
			if tc.wantFail && (got.Meta.Err == nil || !containsLine(got.Meta.LogMessages, "insufficient lamports")) {
				t.Errorf("failed transaction meta: err %v logs %q", got.Meta.Err, got.Meta.LogMessages)
			}
		})
	}
}

func TestExpiredBlockhash(t *testing.T) {
	_, c := startLocalnet(t, Options{SlotInterval: 2 * time.Millisecond})
	payer := fund(t, c, sol)
	bh, err := c.GetLatestBlockhash(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	tx := signWith(t, bh.Value.Blockhash, payer, nil, system.NewTransferInstruction(1000000, payer.PublicKey(), newKey(t).PublicKey()).Build())
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := c.GetBlockHeight(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if h > bh.Value.LastValidBlockHeight {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("block height %d did not pass %d", h, bh.Value.LastValidBlockHeight)
		}
		time.Sleep(50 * time.Millisecond)
	}
	valid, err := c.IsBlockhashValid(t.Context(), bh.Value.Blockhash, "")
	if err != nil || valid.Value {
		t.Fatalf("isBlockhashValid after expiry = %v, %v; want false", valid, err)
	}
	_, err = c.SendTransaction(t.Context(), tx)
	re := rpcError(t, err)
	if re.Code != -32002 || re.Message != "Transaction simulation failed: Blockhash not found" {
		t.Fatalf("error = %d %q, want -32002 Blockhash not found", re.Code, re.Message)
	}
}

func TestTokenTransferWithMemo(t *testing.T) {
	_, c := startLocalnet(t, Options{})
	ctx := t.Context()
	payer := fund(t, c, 10*sol)
	mint := newKey(t)
	alice, bob := newKey(t).PublicKey(), newKey(t).PublicKey()
	const decimals = 6

	mintRent, err := c.GetMinimumBalanceForRentExemption(ctx, token.MINT_SIZE, "")
	if err != nil {
		t.Fatal(err)
	}
	aliceATA, _, err := solana.FindAssociatedTokenAddress(alice, mint.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	bobATA, _, _ := solana.FindAssociatedTokenAddress(bob, mint.PublicKey())
	setup := signedTx(t, c, payer, []solana.PrivateKey{mint},
		system.NewCreateAccountInstruction(mintRent, token.MINT_SIZE, solana.TokenProgramID, payer.PublicKey(), mint.PublicKey()).Build(),
		token.NewInitializeMint2Instruction(decimals, payer.PublicKey(), payer.PublicKey(), mint.PublicKey()).Build(),
		ata.NewCreateInstruction(payer.PublicKey(), alice, mint.PublicKey()).Build(),
		ata.NewCreateInstruction(payer.PublicKey(), bob, mint.PublicKey()).Build(),
		token.NewMintToInstruction(5_000_000, mint.PublicKey(), aliceATA, payer.PublicKey(), nil).Build(),
	)
	sig, err := c.SendTransaction(ctx, setup)
	if err != nil {
		t.Fatalf("create mint and accounts: %v", err)
	}
	waitStatus(t, c, sig)

	// owner pays bob 1.25 tokens with a memo, the way a VFT payout does.
	const text = "vft:1:bafyjob:bafyresult"
	owner := newKey(t)
	ownerATA, _, _ := solana.FindAssociatedTokenAddress(owner.PublicKey(), mint.PublicKey())
	prep := signedTx(t, c, payer, nil,
		ata.NewCreateInstruction(payer.PublicKey(), owner.PublicKey(), mint.PublicKey()).Build(),
		token.NewMintToInstruction(2_000_000, mint.PublicKey(), ownerATA, payer.PublicKey(), nil).Build(),
	)
	if _, err := c.SendTransaction(ctx, prep); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, prep.Signatures[0])
	pay := signedTx(t, c, payer, []solana.PrivateKey{owner},
		token.NewTransferCheckedInstruction(1_250_000, decimals, ownerATA, mint.PublicKey(), bobATA, owner.PublicKey(), nil).Build(),
		memoInstruction(text, payer.PublicKey()),
	)
	paySig, err := c.SendTransaction(ctx, pay)
	if err != nil {
		t.Fatalf("transfer with memo: %v", err)
	}
	waitStatus(t, c, paySig)

	for _, tc := range []struct {
		account solana.PublicKey
		amount  string
		ui      string
	}{
		{aliceATA, "5000000", "5"},
		{ownerATA, "750000", "0.75"},
		{bobATA, "1250000", "1.25"},
	} {
		bal, err := c.GetTokenAccountBalance(ctx, tc.account, "")
		if err != nil {
			t.Fatalf("getTokenAccountBalance: %v", err)
		}
		v := bal.Value
		if v.Amount != tc.amount || v.Decimals != decimals || v.UiAmountString != tc.ui || v.UiAmount == nil {
			t.Errorf("token balance = %+v, want %s (%s)", v, tc.amount, tc.ui)
		}
	}

	got, err := c.GetTransaction(ctx, paySig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !containsLine(got.Meta.LogMessages, "Program log: Memo (len 24)") || !containsLine(got.Meta.LogMessages, "Program log: "+text) {
		t.Errorf("logs do not show the memo: %q", got.Meta.LogMessages)
	}
	if len(got.Meta.PreTokenBalances) != 2 || len(got.Meta.PostTokenBalances) != 2 {
		t.Errorf("token balances pre %+v post %+v", got.Meta.PreTokenBalances, got.Meta.PostTokenBalances)
	}

	// jsonParsed decodes the payment the way an explorer (or a payout
	// verifier) reads it.
	ptx, err := c.GetParsedTransaction(ctx, paySig, &rpc.GetParsedTransactionOpts{})
	if err != nil {
		t.Fatalf("getTransaction jsonParsed: %v", err)
	}
	ixs := ptx.Transaction.Message.Instructions
	if len(ixs) != 2 || ixs[0].Program != "spl-token" || ixs[1].Program != "spl-memo" {
		t.Fatalf("parsed instructions = %s", dump(ixs))
	}
	var transfer struct {
		Type string `json:"type"`
		Info struct {
			Source, Destination, Mint, Authority string
			TokenAmount                          rpc.UiTokenAmount `json:"tokenAmount"`
		} `json:"info"`
	}
	raw, _ := json.Marshal(ixs[0].Parsed)
	if err := json.Unmarshal(raw, &transfer); err != nil {
		t.Fatal(err)
	}
	if transfer.Type != "transferChecked" || transfer.Info.Source != ownerATA.String() || transfer.Info.Destination != bobATA.String() ||
		transfer.Info.Authority != owner.PublicKey().String() || transfer.Info.TokenAmount.Amount != "1250000" {
		t.Errorf("parsed transfer = %s", raw)
	}
	if memoText, _ := json.Marshal(ixs[1].Parsed); string(memoText) != `"`+text+`"` {
		t.Errorf("parsed memo = %s", memoText)
	}

	// A crashed payer finds its payout again by address and memo.
	sigs, err := c.GetSignaturesForAddress(ctx, bobATA)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 2 || sigs[0].Signature != paySig || sigs[0].Memo == nil || *sigs[0].Memo != "[24] "+text ||
		sigs[0].Err != nil || sigs[0].BlockTime == nil || sigs[0].Slot == 0 {
		t.Fatalf("getSignaturesForAddress(bob's account) = %s", dump(sigs))
	}
	if sigs[1].Signature != sig || sigs[1].Memo != nil {
		t.Errorf("older entry = %s, want the setup transaction without memo", dump(sigs[1]))
	}

	parsed, err := c.GetAccountInfoWithOpts(ctx, bobATA, &rpc.GetAccountInfoOpts{Encoding: solana.EncodingJSONParsed})
	if err != nil {
		t.Fatalf("getAccountInfo jsonParsed: %v", err)
	}
	var info struct {
		Program string `json:"program"`
		Parsed  struct {
			Type string `json:"type"`
			Info struct {
				Mint, Owner string
				TokenAmount rpc.UiTokenAmount `json:"tokenAmount"`
			} `json:"info"`
		} `json:"parsed"`
	}
	if err := json.Unmarshal(parsed.Value.Data.GetRawJSON(), &info); err != nil {
		t.Fatal(err)
	}
	if info.Program != "spl-token" || info.Parsed.Type != "account" || info.Parsed.Info.Mint != mint.PublicKey().String() ||
		info.Parsed.Info.Owner != bob.String() || info.Parsed.Info.TokenAmount.UiAmountString != "1.25" {
		t.Errorf("jsonParsed token account = %+v", info)
	}

	_, err = c.GetTokenAccountBalance(ctx, payer.PublicKey(), "")
	if re := rpcError(t, err); re.Code != -32602 || re.Message != "Invalid param: not a Token account" {
		t.Errorf("getTokenAccountBalance(system account) error = %d %q", re.Code, re.Message)
	}
}

// memoInstruction builds a Memo instruction whose data is the text itself.
// (solana-go's memo.NewMemoInstruction prefixes a length byte, which the
// Memo program keeps as part of the memo.)
func memoInstruction(text string, signer solana.PublicKey) solana.Instruction {
	return solana.NewInstruction(memo.ProgramID, solana.AccountMetaSlice{solana.Meta(signer).SIGNER()}, []byte(text))
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAccounts(t *testing.T) {
	_, c := startLocalnet(t, Options{})
	ctx := t.Context()
	for _, tc := range []struct {
		size uint64
		want uint64
	}{{0, 890880}, {82, 1461600}, {165, 2039280}} {
		got, err := c.GetMinimumBalanceForRentExemption(ctx, tc.size, "")
		if err != nil || got != tc.want {
			t.Errorf("getMinimumBalanceForRentExemption(%d) = %d, %v; want %d", tc.size, got, err, tc.want)
		}
	}
	k := fund(t, c, sol)
	missing := newKey(t).PublicKey()
	out, err := c.GetMultipleAccounts(ctx, k.PublicKey(), missing, solana.TokenProgramID)
	if err != nil {
		t.Fatal(err)
	}
	v := out.Value
	if len(v) != 3 || v[0] == nil || v[0].Lamports != sol || v[0].Owner != solana.SystemProgramID || v[1] != nil ||
		v[2] == nil || !v[2].Executable {
		t.Fatalf("getMultipleAccounts = %s", dump(out))
	}
	info, err := c.GetAccountInfo(ctx, k.PublicKey())
	if err != nil || info.Value.Lamports != sol || info.Context.Slot == 0 {
		t.Fatalf("getAccountInfo = %s, %v", dump(info), err)
	}
	if _, err := c.GetAccountInfo(ctx, missing); !errors.Is(err, rpc.ErrNotFound) {
		t.Errorf("getAccountInfo(missing) error = %v, want not found", err)
	}
}

// rawCall posts body to the RPC endpoint and decodes the reply.
func rawCall(t *testing.T, url, body string, out any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("decode reply to %s: %v", body, err)
	}
}

type rawReply struct {
	ID     any             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestJSONRPC(t *testing.T) {
	l, c := startLocalnet(t, Options{})
	ctx := t.Context()

	var out any
	err := c.RPCCallForInto(ctx, &out, "getNoSuchThing", nil)
	if re := rpcError(t, err); re.Code != -32601 || re.Message != "Method not found" {
		t.Errorf("unknown method error = %d %q", re.Code, re.Message)
	}

	var batch []rawReply
	rawCall(t, l.RPCURL(), `[{"jsonrpc":"2.0","id":1,"method":"getSlot"},{"jsonrpc":"2.0","id":2,"method":"nope"},{"jsonrpc":"2.0","id":3,"method":"getHealth"}]`, &batch)
	if len(batch) != 3 || batch[0].Error != nil || batch[1].Error == nil || batch[1].Error.Code != -32601 || string(batch[2].Result) != `"ok"` {
		t.Errorf("batch reply = %s", dump(batch))
	}
	var parseErr rawReply
	rawCall(t, l.RPCURL(), `{"jsonrpc":`, &parseErr)
	if parseErr.Error == nil || parseErr.Error.Code != -32700 {
		t.Errorf("malformed request reply = %s", dump(parseErr))
	}

	// sendTransaction with its default base58 encoding.
	payer := fund(t, c, sol)
	tx := signedTx(t, c, payer, nil, system.NewTransferInstruction(1000000, payer.PublicKey(), newKey(t).PublicKey()).Build())
	raw, _ := tx.MarshalBinary()
	var sig string
	if err := c.RPCCallForInto(ctx, &sig, "sendTransaction", []any{solana.Base58(raw).String()}); err != nil {
		t.Fatalf("sendTransaction base58: %v", err)
	}
	if sig != tx.Signatures[0].String() {
		t.Fatalf("sendTransaction base58 returned %s", sig)
	}

	fee, err := c.GetFeeForMessage(ctx, mustMessage(t, tx), "")
	if err != nil || fee.Value == nil || *fee.Value != 5000 {
		t.Errorf("getFeeForMessage = %s, %v; want 5000", dump(fee), err)
	}
	sim, err := c.SimulateTransaction(ctx, signedTx(t, c, payer, nil, system.NewTransferInstruction(1, payer.PublicKey(), newKey(t).PublicKey()).Build()))
	if err != nil || sim.Value.Err == nil {
		// 1 lamport to a new account leaves it below the rent-exempt minimum.
		t.Errorf("simulateTransaction = %s, %v; want a rent error", dump(sim), err)
	}
	for _, m := range []string{"getSlot", "getBlockHeight", "getHealth", "getVersion", "getEpochInfo", "getGenesisHash"} {
		var v any
		if err := c.RPCCallForInto(ctx, &v, m, nil); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

func mustMessage(t *testing.T, tx *solana.Transaction) string {
	t.Helper()
	b, err := tx.Message.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestSubscriptions(t *testing.T) {
	l, c := startLocalnet(t, Options{SlotInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	wsc, err := ws.Connect(ctx, l.WSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer wsc.Close()

	slots, err := wsc.SlotSubscribe()
	if err != nil {
		t.Fatal(err)
	}
	s1, err := slots.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := slots.Recv(ctx)
	if err != nil || s2.Slot <= s1.Slot || s2.Parent != s2.Slot-1 {
		t.Fatalf("slotNotifications %+v then %+v, %v", s1, s2, err)
	}
	slots.Unsubscribe()

	k := newKey(t)
	acct, err := wsc.AccountSubscribe(k.PublicKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer acct.Unsubscribe()
	if _, err := c.RequestAirdrop(ctx, k.PublicKey(), sol, ""); err != nil {
		t.Fatal(err)
	}
	note, err := acct.Recv(ctx)
	if err != nil || note.Value == nil || note.Value.Lamports != sol || note.Context.Slot == 0 {
		t.Fatalf("accountNotification = %s, %v", dump(note), err)
	}
}

func TestStartErrors(t *testing.T) {
	ctx := t.Context()
	bare := t.TempDir()
	if err := os.WriteFile(filepath.Join(bare, "server.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(ctx, Options{Dir: bare})
	if !errors.Is(err, ErrNotInstalled) || !strings.HasPrefix(err.Error(), "chain/localnet: node_modules missing, run `npm ci --prefix chain/localnet`") {
		t.Errorf("Start without node_modules: %v", err)
	}
	dir, err := Locate()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Start(ctx, Options{Dir: dir, Node: filepath.Join(bare, "no-such-node")})
	if !errors.Is(err, ErrNodeMissing) {
		t.Errorf("Start without node: %v", err)
	}
	// A websocket port another program holds: one clear error, not a
	// crashed server (ws re-emitted the listen error as an unhandled one;
	// with random ports that crash also defeated the retry).
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	_, err = Start(ctx, Options{Dir: dir, RPCPort: port - 1})
	if err == nil || !strings.Contains(err.Error(), "cannot listen") || strings.Contains(err.Error(), "Unhandled") {
		t.Errorf("Start with the websocket port %d taken: %v", port, err)
	}
	t.Setenv(DirEnv, bare)
	if d, err := Locate(); err != nil || d != bare {
		t.Errorf("Locate with %s set = %q, %v", DirEnv, d, err)
	}
}

func TestLifecycle(t *testing.T) {
	l, _ := startLocalnet(t, Options{})
	rpcURL, _ := url.Parse(l.RPCURL())
	wsURL, _ := url.Parse(l.WSURL())
	rpcPort, _ := strconv.Atoi(rpcURL.Port())
	if wsURL.Port() != strconv.Itoa(rpcPort+1) || rpcURL.Hostname() != "127.0.0.1" || wsURL.Scheme != "ws" {
		t.Errorf("RPC %s and websocket %s: want loopback, websocket on the RPC port + 1", l.RPCURL(), l.WSURL())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("process still running after Close")
	}
	if _, err := http.Post(l.RPCURL(), "application/json", strings.NewReader(`{}`)); err == nil {
		t.Error("server still answers after Close")
	}
}

func TestParseReady(t *testing.T) {
	for _, tc := range []struct {
		line, rpc, ws string
		ok            bool
	}{
		{"localnet ready rpc=http://127.0.0.1:8899 ws=ws://127.0.0.1:8900", "http://127.0.0.1:8899", "ws://127.0.0.1:8900", true},
		{"localnet ready rpc=http://127.0.0.1:1", "http://127.0.0.1:1", "", false},
		{"something else", "", "", false},
	} {
		rpcURL, wsURL, ok := parseReady(tc.line)
		if rpcURL != tc.rpc || wsURL != tc.ws || ok != tc.ok {
			t.Errorf("parseReady(%q) = %q, %q, %v", tc.line, rpcURL, wsURL, ok)
		}
	}
}

// TestLookupTableV0 creates an address lookup table with the real ALT
// program and pays two accounts named only through it in a v0 transaction.
func TestLookupTableV0(t *testing.T) {
	_, c := startLocalnet(t, Options{SlotInterval: 20 * time.Millisecond})
	ctx := t.Context()
	payer := fund(t, c, 10*sol)
	altProgram := solana.MustPublicKeyFromBase58("AddressLookupTab1e1111111111111111111111111")
	slot, err := c.GetSlot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	slotLE := binary.LittleEndian.AppendUint64(nil, slot)
	table, bump, err := solana.FindProgramAddress([][]byte{payer.PublicKey().Bytes(), slotLE}, altProgram)
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := newKey(t).PublicKey(), newKey(t).PublicKey()
	metas := solana.AccountMetaSlice{
		solana.Meta(table).WRITE(),
		solana.Meta(payer.PublicKey()).SIGNER(),
		solana.Meta(payer.PublicKey()).WRITE().SIGNER(),
		solana.Meta(solana.SystemProgramID),
	}
	create := append(append([]byte{0, 0, 0, 0}, slotLE...), bump)
	extend := binary.LittleEndian.AppendUint64([]byte{2, 0, 0, 0}, 2)
	extend = append(append(extend, r1.Bytes()...), r2.Bytes()...)
	setup := signedTx(t, c, payer, nil,
		solana.NewInstruction(altProgram, metas, create),
		solana.NewInstruction(altProgram, metas, extend))
	if _, err := c.SendTransaction(ctx, setup); err != nil {
		t.Fatalf("create lookup table: %v", err)
	}
	waitStatus(t, c, setup.Signatures[0])
	time.Sleep(100 * time.Millisecond) // addresses are usable from the next slot

	bh, err := c.GetLatestBlockhash(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := solana.NewTransaction([]solana.Instruction{
		system.NewTransferInstruction(sol, payer.PublicKey(), r1).Build(),
		system.NewTransferInstruction(2*sol, payer.PublicKey(), r2).Build(),
	}, bh.Value.Blockhash, solana.TransactionPayer(payer.PublicKey()),
		solana.TransactionAddressTables(map[solana.PublicKey]solana.PublicKeySlice{table: {r1, r2}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Sign(func(solana.PublicKey) *solana.PrivateKey { return &payer }); err != nil {
		t.Fatal(err)
	}
	sig, err := c.SendTransaction(ctx, tx)
	if err != nil {
		t.Fatalf("send v0 transaction: %v", err)
	}
	if st := waitStatus(t, c, sig); st.Err != nil {
		t.Fatalf("v0 transaction failed: %v", st.Err)
	}
	for key, want := range map[solana.PublicKey]uint64{r1: sol, r2: 2 * sol} {
		if bal, err := c.GetBalance(ctx, key, ""); err != nil || bal.Value != want {
			t.Errorf("balance of %s = %v, %v; want %d", key, bal, err, want)
		}
	}

	_, err = c.GetTransaction(ctx, sig, nil)
	if re := rpcError(t, err); re.Code != -32015 {
		t.Errorf("getTransaction(v0) without maxSupportedTransactionVersion: %d %q", re.Code, re.Message)
	}
	v0 := uint64(0)
	got, err := c.GetTransaction(ctx, sig, &rpc.GetTransactionOpts{MaxSupportedTransactionVersion: &v0})
	if err != nil {
		t.Fatal(err)
	}
	w := got.Meta.LoadedAddresses.Writable
	if got.Version != 0 || len(w) != 2 || w[0] != r1 || w[1] != r2 || len(got.Meta.PostBalances) != 4 {
		t.Errorf("getTransaction(v0): version %d loaded %s postBalances %v", got.Version, dump(got.Meta.LoadedAddresses), got.Meta.PostBalances)
	}
}

// TestExitsWithParent checks that the server stops when its stdin closes,
// which is what happens when the Go process dies without calling Close.
func TestExitsWithParent(t *testing.T) {
	l, _ := startLocalnet(t, Options{})
	if err := l.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server still running 10s after its stdin closed")
	}
}
