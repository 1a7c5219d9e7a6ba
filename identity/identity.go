// Package identity holds a node's one key: an ed25519 key whose public half
// is both the node's libp2p peer ID and its Solana wallet address.
//
// The key file uses the Solana CLI keypair format (a JSON array of the 64
// bytes seed‖public key), so `solana` tools can read a node's wallet as is.
package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mr-tron/base58"
)

// ErrCorrupt reports a key file that exists but does not hold a valid key.
var ErrCorrupt = errors.New("identity key file is corrupt")

// ErrInsecure reports a key file that other users can read.
var ErrInsecure = errors.New("identity key file is readable by other users")

// Key is a node's private key, with its derived forms computed once.
type Key struct {
	priv   ed25519.PrivateKey
	libp2p crypto.PrivKey
	peerID peer.ID
}

// Generate makes a new random key.
func Generate() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return FromPrivateKey(priv)
}

// FromPrivateKey wraps an existing ed25519 key (seed‖public).
func FromPrivateKey(priv ed25519.PrivateKey) (*Key, error) {
	lp, err := crypto.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("ed25519 key: %w", err)
	}
	id, err := peer.IDFromPrivateKey(lp)
	if err != nil {
		return nil, fmt.Errorf("peer ID from ed25519 key: %w", err)
	}
	return &Key{priv: bytes.Clone(priv), libp2p: lp, peerID: id}, nil
}

// Load reads a key file written by Save (or by `solana-keygen new`). It
// refuses files that group or others can read, like ssh does, because the
// key also controls the node's funds.
func Load(path string) (*Key, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read identity key %s: %w", path, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run `chmod 600 %s`", ErrInsecure, path, info.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity key %s: %w", path, err)
	}
	key, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v; restore it from a backup or move it away and run `vft init` again", ErrCorrupt, path, err)
	}
	return key, nil
}

func parse(data []byte) (*Key, error) {
	var raw []int
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON array of bytes")
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("holds %d bytes, want %d", len(raw), ed25519.PrivateKeySize)
	}
	buf := make([]byte, len(raw))
	for i, v := range raw {
		if v < 0 || v > 255 {
			return nil, fmt.Errorf("value %d at position %d is not a byte", v, i)
		}
		buf[i] = byte(v)
	}
	// The second half must be the public key of the first: a file with a
	// flipped bit is caught here instead of producing a different identity.
	priv := ed25519.NewKeyFromSeed(buf[:ed25519.SeedSize])
	if !bytes.Equal(priv, buf) {
		return nil, fmt.Errorf("public key does not match the seed")
	}
	return FromPrivateKey(priv)
}

// Save writes the key with mode 0600. It never overwrites an existing file.
func (k *Key) Save(path string) error {
	raw := make([]int, len(k.priv))
	for i, b := range k.priv {
		raw[i] = int(b)
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("encode identity key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write identity key %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("write identity key: %s already exists", path)
		}
		return fmt.Errorf("write identity key %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write identity key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write identity key %s: %w", path, err)
	}
	return nil
}

// PrivateKey returns the raw ed25519 key (seed‖public), for signing.
func (k *Key) PrivateKey() ed25519.PrivateKey { return k.priv }

// PublicKey returns the raw ed25519 public key.
func (k *Key) PublicKey() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// LibP2P returns the key in libp2p's form, for the host.
func (k *Key) LibP2P() crypto.PrivKey { return k.libp2p }

// PeerID is the node's libp2p peer ID.
func (k *Key) PeerID() peer.ID { return k.peerID }

// WalletAddress is the node's Solana address: the public key in base58.
func (k *Key) WalletAddress() string { return base58.Encode(k.PublicKey()) }

// WalletAddressOf returns the Solana address of a peer whose ID embeds an
// ed25519 key, so a node can pay a peer it has only met on the network.
func WalletAddressOf(id peer.ID) (string, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return "", fmt.Errorf("peer %s: extract public key: %w", id, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return "", fmt.Errorf("peer %s has a %s key, not ed25519: it has no Solana address", id, pub.Type())
	}
	raw, err := pub.Raw()
	if err != nil {
		return "", fmt.Errorf("peer %s: raw public key: %w", id, err)
	}
	return base58.Encode(raw), nil
}
