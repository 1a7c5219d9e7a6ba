package protodoc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/escrow"
	"github.com/vft-network/vft/heartbeat"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/verify"
	"github.com/vft-network/vft/wire"
)

// The limits each kind is checked with, as docs/PROTOCOL.md states them
// (TestDocLimits holds the doc to the code's exported constants).
var (
	HeartbeatLimits = Limits{heartbeat.MaxSize, heartbeat.MaxAge, heartbeat.MaxFuture}
	OfferLimits     = Limits{job.MaxOfferSize, job.MaxOfferAge, job.MaxOfferFuture}
	CancelLimits    = Limits{4 << 10, 2 * time.Minute, 30 * time.Second}
	VerdictLimits   = Limits{job.MaxVerdictSize, time.Hour, 30 * time.Second}
	DirectLimits    = Limits{job.MaxOfferSize + 4<<10, time.Minute, 30 * time.Second}
	EscrowReqLimits = Limits{8 << 10, time.Minute, 30 * time.Second}
	EscrowRepLimits = Limits{2 << 10, time.Minute, 30 * time.Second}
	// RevealInVerdictLimits apply to each reveal a verdict carries.
	RevealInVerdictLimits = Limits{1 << 10, 24 * time.Hour, 30 * time.Second}
)

// cidOf makes a CIDv1 (raw, sha2-256) of s: a stand-in module, input or
// result.
func cidOf(s string) string {
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte(s))
	if err != nil {
		panic(err)
	}
	return c.String()
}

// Set is every vector, by file name under docs/vectors/.
type Set map[string][]Vector

// Build makes every vector from the code's own types and signing.
func Build() (Set, error) {
	b := &builder{set: Set{}}
	b.heartbeats()
	b.jobs()
	b.escrow()
	return b.set, b.err
}

type builder struct {
	set Set
	err error
}

func (b *builder) add(file string, v Vector, err error) *Vector {
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("vector %s: %w", v.Name, err)
	}
	b.set[file] = append(b.set[file], v)
	return &b.set[file][len(b.set[file])-1]
}

func invalid(v Vector, why string) Vector { v.Valid, v.Error = false, why; return v }

var (
	submitter, submitterSeed = Key(1)
	workerA, workerASeed     = Key(2)
	workerB, workerBSeed     = Key(3)
	workerC, workerCSeed     = Key(4)
	stranger, strangerSeed   = Key(9)
)

func miner() heartbeat.Heartbeat {
	return heartbeat.Heartbeat{
		Mode: "miner", Version: "v0.1.0", UptimeSec: 3600, IntervalSec: 30, NetworkSize: 12,
		Executors: []string{"wasm"}, PriceFloor: 1000, Mint: "", FreeSlots: 2,
		CPUCores: 8, MemoryBytes: 16 << 30, FreeMemoryBytes: 12 << 30,
	}
}

func (b *builder) heartbeats() {
	const f = "heartbeat.json"
	hb := func(name, desc string, at time.Time, body any) Vector {
		v, err := seal(name, desc, workerA, workerASeed, heartbeat.Kind, at, body, HeartbeatLimits)
		v.Topic = heartbeat.TopicName
		if err != nil && b.err == nil {
			b.err = err
		}
		return v
	}
	b.add(f, hb("heartbeat-valid", "a miner without GPUs: gpus is null (an empty list is sent as null)", Now.Add(-time.Second), miner()), nil)
	gpu := miner()
	gpu.Executors = []string{"wasm", "native"}
	gpu.GPUs = []heartbeat.GPU{{Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30, FreeMemoryBytes: 79 << 30, ComputeCapability: "9.0", UtilPercent: 3}}
	b.add(f, hb("heartbeat-gpu", "a miner with one GPU and both executors", Now.Add(-time.Second), gpu), nil)
	nat := gpu
	nat.Executors = []string{"wasm", "oci"}
	nat.Addrs = []string{"/ip4/198.18.0.10/udp/4101/quic-v1/p2p/" + workerB.PeerID().String() + "/p2p-circuit"}
	nat.Reachability, nat.OCIRuntime, nat.GPUAccess = heartbeat.ReachabilityPrivate, "runc", heartbeat.GPUAccessCDI
	b.add(f, hb("heartbeat-behind-nat", "a GPU miner behind NAT: the optional keys addrs (its relay address), reachability, oci_runtime and gpu_access", Now.Add(-time.Second), nat), nil)
	badAccess := nat
	badAccess.GPUAccess = "magic"
	b.add(f, invalid(hb("heartbeat-bad-gpu-access", "gpu_access is neither cdi nor nvml", Now.Add(-time.Second), badAccess), "gpu_access"), nil)
	empty := miner()
	empty.GPUs = []heartbeat.GPU{}
	b.add(f, hb("heartbeat-empty-list", "gpus as an empty array instead of null: also canonical (it re-encodes to itself), so accepted", Now.Add(-time.Second), empty), nil)
	noMint := map[string]any{}
	for k, v := range map[string]any{"mode": "miner", "version": "v0.1.0", "uptime_s": 3600, "interval_s": 30, "network_size": 12,
		"executors": []string{"wasm"}, "price_floor": 1000, "free_slots": 2, "cpu_cores": 8, "memory_bytes": 16 << 30,
		"free_memory_bytes": 12 << 30, "gpus": nil} {
		noMint[k] = v
	}
	b.add(f, invalid(hb("heartbeat-missing-field", "mint left out: every field without omitempty is required, even when empty", Now.Add(-time.Second), noMint), "not in deterministic CBOR form"), nil)
	extra := map[string]any{"color": "blue"}
	for k, v := range noMint {
		extra[k] = v
	}
	extra["mint"] = ""
	b.add(f, invalid(hb("heartbeat-unknown-field", "an extra key (color): unknown fields are errors", Now.Add(-time.Second), extra), "unknown field"), nil)
	bad := hb("heartbeat-bad-signature", "heartbeat-valid with the signature's first byte flipped", Now.Add(-time.Second), miner())
	env := bad.EnvelopeBytes()
	sig, _ := hex.DecodeString(bad.Sig)
	i := strings.LastIndex(string(env), string(sig))
	env[i] ^= 0xff
	sig[0] ^= 0xff
	bad.Sig = hex.EncodeToString(sig)
	bad.setEnvelope(env)
	b.add(f, invalid(bad, "bad signature"), nil)
	b.add(f, invalid(hb("heartbeat-stale", "signed 2 min 1 s before the receiver's clock (max age 2 min)", Now.Add(-heartbeat.MaxAge-time.Second), miner()), "too old"), nil)
	b.add(f, invalid(hb("heartbeat-future", "signed 31 s ahead of the receiver's clock (tolerance 30 s)", Now.Add(heartbeat.MaxFuture+time.Second), miner()), "from the future"), nil)
	big := miner()
	for len(big.Executors) < 600 {
		big.Executors = append(big.Executors, "executor-with-a-long-name-"+fmt.Sprint(len(big.Executors)))
	}
	b.add(f, invalid(hb("heartbeat-oversize", "over the 16 KiB limit of a heartbeat envelope", Now.Add(-time.Second), big), "too large"), nil)
	short := miner()
	short.IntervalSec = 4
	b.add(f, invalid(hb("heartbeat-interval-too-short", "interval_s 4, below the 5 s minimum", Now.Add(-time.Second), short), "outside 5s..30m"), nil)
	// Non-canonical: the signature is over the canonical form, so a
	// receiver that re-encoded before checking would accept it.
	nc := hb("heartbeat-non-canonical", "heartbeat-valid with the envelope's map header as 0xb8 0x05 instead of 0xa5: not the shortest form, rejected before the signature is checked", Now.Add(-time.Second), miner())
	b.add(f, invalid(nc, "not in deterministic CBOR form"), nil).setEnvelope(nonMinimalHeader(nc.EnvelopeBytes()))
}

// nonMinimalHeader re-encodes the envelope's map header (0xa5, a map of
// five pairs) in its two-byte form (0xb8 0x05): the same map, but not the
// shortest encoding, so not the one deterministic form.
func nonMinimalHeader(env []byte) []byte {
	if env[0] != 0xa5 {
		panic("envelope is not a map of 5")
	}
	return append([]byte{0xb8, 0x05}, env[1:]...)
}

func (b *builder) jobs() {
	const f = "jobs.json"
	spec := job.Spec{
		Executor: job.ExecutorWASM, Module: cidOf("module"),
		Inputs: []job.Input{{CID: cidOf("input"), Path: "data"}},
		Args:   []string{"--n", "3"}, Env: map[string]string{"MODE": "fast"}, Seed: 42,
		Needs:  job.Resources{CPUCores: 1, MemoryBytes: 256 << 20, TimeoutMS: 120000, MaxOutputBytes: 1 << 20},
		Verify: verify.Policy{Mode: verify.ModeExact, Workers: 3, Quorum: 2},
		Reward: 1_000_000, Deadline: Now.Add(time.Hour).UnixMilli(), Nonce: []byte("0123456789abcdef"),
	}
	sealAs := func(name, desc string, key byte, kind string, at time.Time, body any, lim Limits) Vector {
		k, seed := Key(key)
		v, err := seal(name, desc, k, seed, kind, at, body, lim)
		if err != nil && b.err == nil {
			b.err = fmt.Errorf("vector %s: %w", name, err)
		}
		return v
	}
	offer := func(name, desc string, at time.Time, body any) *Vector {
		v := sealAs(name, desc, 1, job.KindOffer, at, body, OfferLimits)
		v.Topic = job.OffersTopic
		raw := v.EnvelopeBytes()
		c, _ := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(raw)
		v.JobID = c.String()
		return b.add(f, v, nil)
	}
	main := offer("offer-valid", "a wasm job, exact verification by 2 of 3 workers, paying 1,000,000 lamports each; job_id is the CID of envelope_hex", Now.Add(-time.Second), spec)
	jobID, offerRaw := main.JobID, main.EnvelopeBytes()
	offer("offer-resent-a-day-later", "an offer signed a day ago, still re-sent unchanged: valid while its deadline has not passed (max age is 7 days + 1 h, not 2 min)", Now.Add(-24*time.Hour), func() job.Spec { s := spec; s.Deadline = Now.Add(time.Hour).UnixMilli(); return s }())
	native := spec
	native.Executor, native.Module, native.Command = job.ExecutorNative, "", []string{"/usr/bin/python3", "train.py"}
	native.Needs.GPUs, native.Needs.GPUMemoryBytes, native.Needs.GPUModel = 1, 40<<30, "H100"
	native.Verify = verify.Policy{Mode: verify.ModeTolerance, Workers: 3, Quorum: 2, RelTolPPB: 1000, AbsTolPPB: 10}
	native.Mint, native.Escrow = cidOfMint(), true
	offer("offer-native-escrow-tolerance", "the optional keys: command (native), escrow, rel_tol_ppb/abs_tol_ppb (tolerance), a mint", Now.Add(-time.Second), native)
	spot := spec
	spot.Verify = verify.Policy{Mode: verify.ModeSpot, Workers: 1, SpotPermille: 100}
	offer("offer-spot", "spot mode: one worker, spot_permille 100 (10 % re-run)", Now.Add(-time.Second), spot)
	custom := spec
	custom.Verify = verify.Policy{Mode: verify.ModeCustom, Workers: 3, Quorum: 2, Verifier: cidOf("verifier")}
	offer("offer-custom", "custom mode: verifier is a module CID", Now.Add(-time.Second), custom)
	nativeFloats := spec
	nativeFloats.Floats = "native"
	offer("offer-wasm-floats-native", "the optional floats key: a wasm job that runs without NaN canonicalisation; left out, as in offer-valid, it is portable", Now.Add(-time.Second), nativeFloats)
	badFloats := spec
	badFloats.Floats = "fast"
	v0 := offer("offer-floats-unknown", "floats is portable or native", Now.Add(-time.Second), badFloats)
	v0.Valid, v0.Error = false, `floats "fast"`
	withFalse := specMap(spec)
	withFalse["escrow"] = false
	v := offer("offer-omitempty-present", "escrow: false written out: an optional (omitempty) key must be left out when zero, or the body is not canonical", Now.Add(-time.Second), withFalse)
	v.Valid, v.Error = false, "not in deterministic CBOR form"
	tag := specMap(spec)
	modCID, _ := cid.Decode(spec.Module)
	tag["module"] = tagged{modCID}
	v = offer("offer-cid-as-tag42", "module as a CBOR tag-42 link instead of a text string: CIDs in bodies are text", Now.Add(-time.Second), tag)
	v.Valid, v.Error = false, "cannot unmarshal"
	past := spec
	past.Deadline = Now.Add(-time.Minute).UnixMilli()
	v = offer("offer-deadline-passed", "the spec's deadline is before the receiver's clock", Now.Add(-2*time.Hour), past)
	v.Valid, v.Error = false, "has passed"
	far := spec
	far.Deadline = Now.Add(job.MaxDeadline + time.Hour).UnixMilli()
	v = offer("offer-deadline-too-far", "deadline more than 7 days ahead", Now.Add(-time.Second), far)
	v.Valid, v.Error = false, "more than"

	cancel := func(name, desc string, key byte, at time.Time, body any) *Vector {
		v := sealAs(name, desc, key, job.KindCancel, at, body, CancelLimits)
		v.Topic, v.Offer = job.OffersTopic, "offer-valid"
		return b.add(f, v, nil)
	}
	cancel("cancel-valid", "the submitter withdraws offer-valid", 1, Now.Add(-time.Second), job.Cancel{Job: jobID, Reason: "changed my mind"})
	v = cancel("cancel-stale", "signed 2 min 1 s ago (max age 2 min)", 1, Now.Add(-2*time.Minute-time.Second), job.Cancel{Job: jobID, Reason: "late"})
	v.Valid, v.Error = false, "too old"
	v = cancel("cancel-not-submitter", "signed by a peer that did not submit the job: valid on the topic, ignored by every node holding the offer", 9, Now.Add(-time.Second), job.Cancel{Job: jobID, Reason: "not mine"})
	v.Valid, v.Error = false, "not by its submitter"
	v = cancel("cancel-oversize", "a 5,000-byte reason: over the 4 KiB limit", 1, Now.Add(-time.Second), job.Cancel{Job: jobID, Reason: strings.Repeat("x", 5000)})
	v.Valid, v.Error = false, "too large"

	direct := func(name, desc, proto string, key byte, kind string, body any) *Vector {
		v := sealAs(name, desc, key, kind, Now.Add(-time.Second), body, DirectLimits)
		v.Protocol = proto
		return b.add(f, v, nil)
	}
	direct("bid-valid", "worker A bids on offer-valid", string(job.ProtocolBid), 2, job.KindBid, job.BidMsg{Job: jobID, Price: 1_000_000, FreeSlots: 2})
	direct("ack-valid", "the submitter's reply to a bid (also to assign, commit, started, progress, verdict)", string(job.ProtocolBid), 1, job.KindAck, job.AckMsg{Job: jobID, OK: true})
	direct("invite-valid", "the submitter invites worker A, drawn for the pool, to bid on offer-valid; offer is the offer's envelope as a byte string. The reply is worker A's job-bid/1 (bid-valid), or a job-ack/1 with ok false and why it does not bid", string(job.ProtocolInvite), 1, job.KindInvite, job.InviteMsg{Offer: offerRaw})
	workers := []string{workerA.PeerID().String(), workerB.PeerID().String(), workerC.PeerID().String()}
	direct("assign-valid", "offer-valid assigned to workers A, B, C (text peer IDs); offer is the offer's envelope as a byte string", string(job.ProtocolAssign), 1, job.KindAssign, job.AssignMsg{Job: jobID, Offer: offerRaw, Workers: workers})
	direct("started-valid", "worker A started", job.ProtocolStarted, 2, job.KindStarted, job.StartedMsg{Job: jobID})
	direct("progress-valid", "worker A is still staging, 300 MiB fetched", job.ProtocolProgress, 2, job.KindProgress, job.ProgressMsg{Job: jobID, Stage: job.StageStaging, StagedBytes: 300 << 20})
	result := cidOf("result")
	salts := map[byte][]byte{}
	for _, k := range []byte{2, 3, 4} {
		s := sha256.Sum256([]byte{k})
		salts[k] = s[:]
	}
	commitA := verify.Commit(result, workerA.PeerID(), salts[2])
	v = direct("commit-valid", "worker A commits to result (see reveal-valid); commitment = SHA-256 over 4-byte big-endian length-prefixed parts \"vft/commit/1\", result CID text, worker peer ID bytes, salt", job.ProtocolCommit, 2, job.KindCommit, job.CommitMsg{Job: jobID, Commitment: commitA})
	v.Commitment = hex.EncodeToString(commitA)
	direct("commit-failure", "worker A's run failed: commitment null, error and failure set", job.ProtocolCommit, 2, job.KindCommit, job.CommitMsg{Job: jobID, Error: "exit code 3: stderr tail", Failure: "exit code 3"})
	direct("reveal-request-valid", "the submitter asks worker A to reveal", job.ProtocolReveal, 1, job.KindRevealRequest, job.RevealRequest{Job: jobID})
	reveals := map[byte][]byte{}
	for _, k := range []byte{2, 3, 4} {
		res := result
		if k == 4 {
			res = cidOf("wrong")
		}
		v = direct(fmt.Sprintf("reveal-valid-%c", 'a'+k-2), "a worker opens its commitment; reveal-valid-a opens commit-valid", job.ProtocolReveal, k, job.KindReveal, job.RevealMsg{Job: jobID, Result: res, Salt: salts[k]})
		kk, _ := Key(k)
		v.Commitment = hex.EncodeToString(verify.Commit(res, kk.PeerID(), salts[k]))
		reveals[k] = v.EnvelopeBytes()
	}
	verdict := func(name, desc string, body job.Verdict) *Vector {
		v := sealAs(name, desc, 1, job.KindVerdict, Now.Add(-time.Second), body, VerdictLimits)
		v.Topic, v.Protocol, v.Offer = job.VerdictsTopic, job.ProtocolVerdict, "offer-valid"
		return b.add(f, v, nil)
	}
	verdict("verdict-accepted", "A and B agree on result, C dissents with another; agreed and dissented are text peer IDs, reveals the workers' envelopes as byte strings",
		job.Verdict{Job: jobID, Offer: offerRaw, Accepted: result, Agreed: workers[:2], Dissented: workers[2:], Reveals: [][]byte{reveals[2], reveals[3], reveals[4]}, Reasons: map[string]string{workers[2]: "different result"}})
	verdict("verdict-no-dissent", "all agree: dissented is null (Go's empty list), reasons an empty map {} (the Go submitter makes the map before it knows of any dissenter)",
		job.Verdict{Job: jobID, Offer: offerRaw, Accepted: result, Agreed: workers[:2], Reveals: [][]byte{reveals[2], reveals[3]}, Reasons: map[string]string{}})
	v = verdict("verdict-forged", "names C as agreeing although C's reveal differs from the accepted result",
		job.Verdict{Job: jobID, Offer: offerRaw, Accepted: result, Agreed: workers, Reveals: [][]byte{reveals[2], reveals[3], reveals[4]}})
	v.Valid, v.Error = false, ""
	v = verdict("verdict-forged-rejection", "rejects the job although the reveals it carries show 2 of 3 agreeing",
		job.Verdict{Job: jobID, Offer: offerRaw, Dissented: workers[:2], Reveals: [][]byte{reveals[2], reveals[3]}})
	v.Valid, v.Error = false, ""
}

// cidOfMint is a stand-in SPL mint address (base58 of 32 bytes).
func cidOfMint() string { k, _ := Key(7); return k.WalletAddress() }

// tagged encodes a CID as a DAG-CBOR link (tag 42), which VFT bodies do
// not use.
type tagged struct{ c cid.Cid }

func (t tagged) MarshalCBOR() ([]byte, error) {
	return wireTag42(t.c.Bytes())
}

func (b *builder) escrow() {
	const f = "escrow.json"
	offers := b.set["jobs.json"]
	jobID := offers[0].JobID
	sub, _ := Key(1)
	payTo, _ := chain.ParsePayout(workerA.WalletAddress(), 1_000_000)
	back, _ := chain.ParsePayout(sub.WalletAddress(), 1_000_000)
	req := escrow.SignRequest{Job: jobID, Kind: escrow.KindRelease, Tx: []byte("<a Solana legacy transaction message>"), ResultCID: cidOf("result"), Payouts: []chain.Payout{payTo, back}}
	v, err := seal("escrow-sign-release", "the submitter asks worker A to co-sign a release; payouts' recipient is the 32-byte public key as a byte string", submitter, submitterSeed, escrow.KindSignRequest, Now.Add(-time.Second), req, EscrowReqLimits)
	v.Protocol = string(escrow.Protocol)
	b.add(f, v, err)
	ref := escrow.SignRequest{Job: jobID, Kind: escrow.KindRefund, Tx: []byte("<tx>"), Payouts: []chain.Payout{back}}
	v, err = seal("escrow-sign-refund", "a refund: result left out (optional)", submitter, submitterSeed, escrow.KindSignRequest, Now.Add(-time.Second), ref, EscrowReqLimits)
	v.Protocol = string(escrow.Protocol)
	b.add(f, v, err)
	sig := make([]byte, 64)
	v, err = seal("escrow-signature", "worker A's signature of the transaction message; refusal left out", workerA, workerASeed, escrow.KindSignReply, Now.Add(-time.Second), escrow.SignReply{Job: jobID, Signature: sig}, EscrowRepLimits)
	v.Protocol = string(escrow.Protocol)
	b.add(f, v, err)
	v, err = seal("escrow-refusal", "a refusal: sig left out", workerA, workerASeed, escrow.KindSignReply, Now.Add(-time.Second), escrow.SignReply{Job: jobID, Refusal: "escrow for job X holds 100, the job pays 300"}, EscrowRepLimits)
	v.Protocol = string(escrow.Protocol)
	b.add(f, v, err)
	_ = strangerSeed
	_ = workerBSeed
	_ = workerCSeed
	_ = stranger
}

// specMap is spec as a generic map, to add or change keys the Go type
// would not.
func specMap(s job.Spec) map[string]any {
	raw, err := wire.Marshal(s)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := cbor.Unmarshal(raw, &m); err != nil {
		panic(err)
	}
	return m
}

func wireTag42(c []byte) ([]byte, error) {
	return wire.Marshal(cbor.Tag{Number: 42, Content: append([]byte{0}, c...)})
}
