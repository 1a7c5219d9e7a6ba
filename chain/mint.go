package chain

import (
	"context"
	"fmt"

	"github.com/gagliardetto/solana-go"
	ata "github.com/gagliardetto/solana-go/programs/associated-token-account"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/gagliardetto/solana-go/programs/token"
	"github.com/gagliardetto/solana-go/rpc"
)

// CreateMint makes a new SPL mint with the wallet as its mint authority
// and mints supply base units into the wallet's associated token account,
// in one transaction; it waits for the configured commitment. It is what
// `vft devnet` uses to create the VFT token on a development chain.
func (c *Client) CreateMint(ctx context.Context, decimals uint8, supply uint64) (solana.PublicKey, solana.Signature, error) {
	mint, err := solana.NewRandomPrivateKey()
	if err != nil {
		return solana.PublicKey{}, solana.Signature{}, err
	}
	rent, err := c.rent(ctx, token.MINT_SIZE)
	if err != nil {
		return solana.PublicKey{}, solana.Signature{}, err
	}
	walletATA, _, err := solana.FindAssociatedTokenAddress(c.Address(), mint.PublicKey())
	if err != nil {
		return solana.PublicKey{}, solana.Signature{}, err
	}
	ixs := []solana.Instruction{
		system.NewCreateAccountInstruction(rent, token.MINT_SIZE, solana.TokenProgramID, c.FeePayer(), mint.PublicKey()).Build(),
		token.NewInitializeMint2Instruction(decimals, c.Address(), c.Address(), mint.PublicKey()).Build(),
		ata.NewCreateInstruction(c.FeePayer(), c.Address(), mint.PublicKey()).Build(),
		token.NewMintToInstruction(supply, mint.PublicKey(), walletATA, c.Address(), nil).Build(),
	}
	sig, err := c.sendOwn(ctx, ixs, mint)
	if err != nil {
		return solana.PublicKey{}, sig, fmt.Errorf("create mint: %w", err)
	}
	return mint.PublicKey(), sig, nil
}

// MintTo mints amount base units of mint (whose authority is the wallet)
// to owner's associated token account, creating it when missing. Two
// identical calls while one blockhash is current build the same
// transaction, which the chain runs once.
func (c *Client) MintTo(ctx context.Context, mint, owner solana.PublicKey, amount uint64) (solana.Signature, error) {
	dest, _, err := solana.FindAssociatedTokenAddress(owner, mint)
	if err != nil {
		return solana.Signature{}, err
	}
	ixs := []solana.Instruction{
		createATAIdempotent(c.FeePayer(), owner, mint, dest),
		token.NewMintToInstruction(amount, mint, dest, c.Address(), nil).Build(),
	}
	sig, err := c.sendOwn(ctx, ixs)
	if err != nil {
		return sig, fmt.Errorf("mint %d of %s to %s: %w", amount, mint, owner, err)
	}
	return sig, nil
}

// sendOwn signs ixs with the fee payer, the wallet and extra keys, sends
// them and waits for the configured commitment.
func (c *Client) sendOwn(ctx context.Context, ixs []solana.Instruction, extra ...solana.PrivateKey) (solana.Signature, error) {
	bh, err := call(ctx, c, "getLatestBlockhash", func(ctx context.Context) (*rpc.GetLatestBlockhashResult, error) {
		return c.rpc.GetLatestBlockhash(ctx, c.cfg.commitment())
	})
	if err != nil {
		return solana.Signature{}, fmt.Errorf("latest blockhash: %w", err)
	}
	tx, err := solana.NewTransaction(ixs, bh.Value.Blockhash, solana.TransactionPayer(c.FeePayer()))
	if err != nil {
		return solana.Signature{}, err
	}
	extraKey := KeyLookup(extra...)
	_, err = tx.Sign(func(pk solana.PublicKey) *solana.PrivateKey {
		if k := extraKey(pk); k != nil {
			return k
		}
		return c.ownKey(pk)
	})
	if err != nil {
		return solana.Signature{}, fmt.Errorf("sign: %w", err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		return solana.Signature{}, err
	}
	s := signed{raw: raw, sig: tx.Signatures[0], lastValid: bh.Value.LastValidBlockHeight}
	if err := c.send(ctx, s); err != nil {
		return s.sig, err
	}
	if _, err := c.waitConfirmed(ctx, s.sig, s.lastValid); err != nil {
		return s.sig, err
	}
	return s.sig, nil
}

// KeyLookup is a transaction signer's key getter over keys: the one whose
// public key is asked for, or nil.
func KeyLookup(keys ...solana.PrivateKey) func(solana.PublicKey) *solana.PrivateKey {
	return func(pk solana.PublicKey) *solana.PrivateKey {
		for i := range keys {
			if keys[i].PublicKey() == pk {
				return &keys[i]
			}
		}
		return nil
	}
}
