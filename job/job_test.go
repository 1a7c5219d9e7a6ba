package job

import (
	"crypto/sha256"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/wire"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeCID stands in for the content store in unit tests: a raw CID of
// the path, so the same path always gives the same CID.
func fakeCID(s string) string {
	h, _ := mh.Sum([]byte(s), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h).String()
}

func validSpec() Spec {
	return Spec{
		Executor: ExecutorWASM, Module: fakeCID("module"),
		Inputs: []Input{{CID: fakeCID("data"), Path: "data"}},
		Args:   []string{"-n", "64"}, Env: map[string]string{"MODE": "fast"}, Seed: 7,
		Needs:    Resources{MemoryBytes: 256 << 20, TimeoutMS: 60_000},
		Verify:   VerificationPolicy{Mode: VerifyExact, Workers: 3, Quorum: 2},
		Reward:   5000,
		Deadline: t0.Add(time.Hour).UnixMilli(),
		Nonce:    []byte("0123456789abcdef"),
	}
}

func TestSpecValidate(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*Spec)
		wantErr string
	}{
		{"valid", func(*Spec) {}, ""},
		{"unknown executor", func(s *Spec) { s.Executor = "docker" }, `"docker"`},
		{"module not a CID", func(s *Spec) { s.Module = "matmul.wasm" }, `"matmul.wasm"`},
		{"wasm with GPUs", func(s *Spec) { s.Needs.GPUs = 1 }, "needs.gpus"},
		{"native without command", func(s *Spec) { s.Executor, s.Module = ExecutorNative, "" }, "command is empty"},
		{"mount path with ..", func(s *Spec) { s.Inputs[0].Path = "../etc" }, `"../etc"`},
		{"absolute mount path", func(s *Spec) { s.Inputs[0].Path = "/etc" }, `"/etc"`},
		{"mounted twice", func(s *Spec) { s.Inputs = append(s.Inputs, Input{CID: fakeCID("x"), Path: "./data"}) }, "mounted twice"},
		{"no timeout", func(s *Spec) { s.Needs.TimeoutMS = 0 }, "needs.timeout"},
		{"minority quorum", func(s *Spec) { s.Verify.Quorum = 1 }, "verify.m = 1"},
		{"too many workers", func(s *Spec) { s.Verify.Workers, s.Verify.Quorum = 17, 9 }, "verify.k = 17"},
		{"spot with 3 workers", func(s *Spec) { s.Verify.Mode = VerifySpot; s.Verify.SpotPermille = 100 }, "spot runs one worker"},
		{"tolerance without tolerances", func(s *Spec) { s.Verify.Mode = VerifyTolerance }, "rel_tol"},
		{"short nonce", func(s *Spec) { s.Nonce = []byte{1} }, "nonce"},
		{"escrow without a mint", func(s *Spec) { s.Escrow, s.Reward = true, 100 }, "escrow needs an SPL token"},
		{"escrow with spot checks", func(s *Spec) {
			s.Escrow, s.Reward, s.Mint = true, 100, "VFTmint"
			s.Verify = VerificationPolicy{Mode: VerifySpot, Workers: 1, SpotPermille: 100}
		}, "not spot"},
		{"escrow for 11 workers", func(s *Spec) {
			s.Escrow, s.Reward, s.Mint = true, 100, "VFTmint"
			s.Verify.Workers, s.Verify.Quorum = 11, 6
		}, "at most 10 workers"},
		{"deadline passed", func(s *Spec) { s.Deadline = t0.Add(-time.Second).UnixMilli() }, "has passed"},
		{"bad env name", func(s *Spec) { s.Env["A=B"] = "x" }, `"A=B"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.edit(&s)
			err := s.Validate(t0)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %s", err, tc.wantErr)
			}
		})
	}
}

func TestOfferIDAndSignature(t *testing.T) {
	key, _ := identity.Generate()
	offer, err := NewOffer(key, validSpec(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if offer.Submitter != key.PeerID() {
		t.Fatalf("submitter %s, want %s", offer.Submitter, key.PeerID())
	}
	// The ID is the dag-cbor CID of exactly the signed bytes.
	sum := sha256.Sum256(offer.Raw)
	if offer.ID.Prefix().Codec != cid.DagCBOR || string(offer.ID.Hash()[2:]) != string(sum[:]) {
		t.Fatalf("ID %s is not the dag-cbor sha2-256 CID of the offer bytes", offer.ID)
	}
	got, err := OpenOffer(offer.Raw, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != offer.ID || got.Spec.Verify.Workers != 3 || got.Spec.Env["MODE"] != "fast" {
		t.Fatalf("round trip changed the offer: %+v", got)
	}
	// Another nonce is another job.
	other := validSpec()
	other.Nonce = []byte("fedcba9876543210")
	o2, _ := NewOffer(key, other, t0)
	if o2.ID == offer.ID {
		t.Fatal("two offers with different nonces share an ID")
	}
}

func TestOpenOfferRejects(t *testing.T) {
	key, _ := identity.Generate()
	bad := validSpec()
	bad.Inputs[0].Path = "../../etc"
	unchecked, _ := wire.Seal(key, KindOffer, t0, bad) // signed, but the spec is invalid
	good, _ := NewOffer(key, validSpec(), t0)
	tampered := append([]byte{}, good.Raw...)
	tampered[len(tampered)/2] ^= 0xff
	cases := []struct {
		name string
		raw  []byte
		at   time.Time
		want string
	}{
		{"invalid spec, validly signed", unchecked, t0, "../../etc"},
		{"tampered", tampered, t0, ""},
		{"past its deadline", good.Raw, t0.Add(2 * time.Hour), "has passed"},
		{"signed far in the past", mustSeal(t, key, t0.Add(-MaxOfferAge-time.Minute)), t0, "too old"},
		{"not an offer", []byte("hello"), t0, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenOffer(tc.raw, tc.at)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("OpenOffer = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCancelOnlyBySubmitter(t *testing.T) {
	alice, _ := identity.Generate()
	mallory, _ := identity.Generate()
	offer, _ := NewOffer(alice, validSpec(), t0)
	own, _ := NewCancel(alice, offer.ID, "changed my mind", t0)
	if _, err := OpenCancel(own, offer, t0); err != nil {
		t.Fatalf("submitter's cancel refused: %v", err)
	}
	forged, _ := NewCancel(mallory, offer.ID, "spite", t0)
	if _, err := OpenCancel(forged, offer, t0); err == nil || !strings.Contains(err.Error(), "not by its submitter") {
		t.Fatalf("cancel by another node: %v", err)
	}
}

// Every example's job.toml parses strictly and resolves to a valid spec.
func TestExampleSpecFiles(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/job.toml")
	if len(files) < 4 {
		t.Fatalf("found %d example job specs, want the 4 examples", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			fs, err := LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Dir(path)
			// The module is built by `make examples`; stand in an empty file.
			if fs.Module != "" {
				fs.Module = filepath.Join(t.TempDir(), filepath.Base(fs.Module))
				os.WriteFile(fs.Module, []byte("\x00asm"), 0o644)
			}
			var added []string
			spec, err := fs.Resolve(dir, func(p string) (string, error) {
				if !filepath.IsAbs(p) {
					t.Errorf("Resolve passed the relative path %q to add: the daemon needs absolute paths", p)
				}
				added = append(added, p)
				return fakeCID(p), nil
			}, t0)
			if err != nil {
				t.Fatal(err)
			}
			if fs.Image != "" {
				// examples/torchinfer: a container job, float32 logits
				// compared with a tolerance, weights named by CID.
				if spec.Executor != "oci" || spec.Verify.Workers != 3 || spec.Verify.Mode != VerifyTolerance || spec.Verify.RelTolPPB == 0 {
					t.Errorf("executor %q, verify = %+v, want oci with tolerance on 3 workers", spec.Executor, spec.Verify)
				}
				if len(spec.Inputs) != 3 || spec.Inputs[0].Path != "model" || spec.Inputs[0].CID != strings.TrimSuffix(fs.Inputs[0], ":model") {
					t.Errorf("inputs = %+v, want the weights by CID at /input/model first", spec.Inputs)
				}
				if len(added) != 2 {
					t.Errorf("added %v, want data and app (the weights and image are CIDs)", added)
				}
				return
			}
			if spec.Verify.Workers != 3 || spec.Verify.Quorum != 2 || spec.Verify.Mode != VerifyExact {
				t.Errorf("verify = %+v, want exact 2 of 3", spec.Verify)
			}
			if len(spec.Inputs) == 0 || spec.Inputs[0].Path != "" {
				t.Errorf("inputs = %+v, want testdata/ mounted at /input", spec.Inputs)
			}
			if len(added) != 1+len(fs.Inputs) {
				t.Errorf("added %v", added)
			}
		})
	}
}

func TestLoadFileRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.toml")
	os.WriteFile(path, []byte("executor = \"wasm\"\nredundnacy = 3\n"), 0o644)
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), "redundnacy") {
		t.Fatalf("LoadFile = %v, want the unknown key named", err)
	}
	fs := FileSpec{Module: "missing.wasm"}
	if _, err := fs.Resolve(t.TempDir(), func(string) (string, error) { return "", errors.New("unused") }, t0); err == nil || !strings.Contains(err.Error(), "missing.wasm") {
		t.Fatalf("Resolve with a missing module = %v", err)
	}
}

func mustSeal(t *testing.T, key *identity.Key, at time.Time) []byte {
	t.Helper()
	raw, err := wire.Seal(key, KindOffer, at, validSpec())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Numbers in a spec file that would wrap as the spec's integers are
// refused with the key and the value: a negative tolerance used to accept
// any result.
func TestResolveRefusesWrappingNumbers(t *testing.T) {
	add := func(string) (string, error) { return fakeCID("x"), nil }
	for _, tc := range []struct {
		file FileSpec
		want string
	}{
		{FileSpec{Module: "m.wasm", Verify: VerifyTolerance, RelTol: -1}, "rel_tol = -1 is not a tolerance"},
		{FileSpec{Module: "m.wasm", Verify: VerifyTolerance, AbsTol: math.NaN()}, "abs_tol = NaN is not a tolerance"},
		{FileSpec{Module: "m.wasm", Verify: VerifySpot, SpotChance: 4.3}, "spot_chance = 4.3 is outside 0..1"},
		{FileSpec{Module: "m.wasm", Memory: -1}, "memory = "},
	} {
		if _, err := tc.file.Resolve(t.TempDir(), add, t0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.file, err, tc.want)
		}
	}
}
