package job

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/verify"
)

// Capacity is what a miner can offer a job now: its hardware after
// exclusions and its free slots.
type Capacity struct {
	CPUCores    uint32
	MemoryBytes uint64
	FreeSlots   uint32
	GPUs        []GPU
}

// GPU is one GPU a miner may hand to a job.
type GPU struct {
	Name        string
	MemoryBytes uint64
}

// Policy is a miner's own terms (the `[market]` config).
type Policy struct {
	MinPrice   uint64
	Mint       string
	Executors  []string
	Submitters []peer.ID // empty: anyone
	// RequireEscrow: run only jobs whose reward is locked in escrow.
	RequireEscrow bool
	// MaxOutputBytes is the most output a job may ask for (0: any).
	MaxOutputBytes uint64
}

// Decline says why a miner does not bid; the submitter collects these to
// tell its user why a job gets no bids.
type Decline struct {
	Reason string
	// Busy: the node's load now (its slots, free memory or free GPUs),
	// not the offer, is the reason, so the same offer may be taken later.
	Busy bool
}

func (d *Decline) Error() string { return d.Reason }

// CanRun decides whether a miner with this capacity and policy bids on an
// offer. A nil result means it can; otherwise the reason names the first
// unmet need, in words a submitter can act on.
func CanRun(o Offer, c Capacity, p Policy) *Decline {
	s := o.Spec
	if !slices.Contains(p.Executors, s.Executor) {
		return &Decline{Reason: fmt.Sprintf("does not offer the %s executor (offers %s)", s.Executor, strings.Join(p.Executors, ", "))}
	}
	if len(p.Submitters) > 0 && !slices.Contains(p.Submitters, o.Submitter) {
		return &Decline{Reason: "takes jobs only from its allowed submitters"}
	}
	if s.Mint != p.Mint {
		return &Decline{Reason: fmt.Sprintf("is paid in %s, not %s", mintName(p.Mint), mintName(s.Mint))}
	}
	if p.RequireEscrow && !s.Escrow {
		return &Decline{Reason: "runs only jobs paid from an escrow (market.require_escrow)"}
	}
	if s.Reward < p.MinPrice {
		return &Decline{Reason: fmt.Sprintf("asks at least %d, the offer pays %d", p.MinPrice, s.Reward)}
	}
	if p.MaxOutputBytes > 0 && s.Needs.MaxOutputBytes > p.MaxOutputBytes {
		return &Decline{Reason: fmt.Sprintf("accepts at most %d MiB of output, the job may write %d MiB (needs.max_output)", p.MaxOutputBytes>>20, s.Needs.MaxOutputBytes>>20)}
	}
	if c.FreeSlots == 0 {
		return &Decline{Reason: "has no free job slot", Busy: true}
	}
	if s.Needs.CPUCores > c.CPUCores {
		return &Decline{Reason: fmt.Sprintf("has %d CPU cores, the job needs %d", c.CPUCores, s.Needs.CPUCores)}
	}
	if s.Needs.MemoryBytes > c.MemoryBytes {
		return &Decline{Reason: fmt.Sprintf("has %d MiB of memory free, the job needs %d MiB", c.MemoryBytes>>20, s.Needs.MemoryBytes>>20), Busy: true}
	}
	if s.Needs.GPUs > 0 {
		fit := 0
		for _, g := range c.GPUs {
			if g.MemoryBytes >= s.Needs.GPUMemoryBytes && (s.Needs.GPUModel == "" || strings.Contains(strings.ToLower(g.Name), strings.ToLower(s.Needs.GPUModel))) {
				fit++
			}
		}
		if uint32(fit) < s.Needs.GPUs {
			need := fmt.Sprintf("%d GPU(s)", s.Needs.GPUs)
			if s.Needs.GPUModel != "" {
				need += " " + s.Needs.GPUModel
			}
			if s.Needs.GPUMemoryBytes > 0 {
				need += fmt.Sprintf(" with %d GiB", s.Needs.GPUMemoryBytes>>30)
			}
			return &Decline{Reason: fmt.Sprintf("has %d matching GPU(s), the job needs %s", fit, need), Busy: true}
		}
	}
	return nil
}

func mintName(m string) string {
	if m == "" {
		return "SOL"
	}
	return m
}

// Bid is a miner's answer to an offer; the verify package weighs it
// (verify.Choose), the same code the simulator runs.
type Bid = verify.Bid

// Explain summarises why the known nodes would not run an offer, for a
// submitter whose job gets no bids: "no node can run it: 3× has 0 matching
// GPU(s)...; 1× asks at least 9000...".
func Explain(o Offer, nodes []KnownNode) string {
	if len(nodes) == 0 {
		return "no miners known yet: none has sent a heartbeat"
	}
	counts := map[string]int{}
	var order []string
	able := 0
	for _, n := range nodes {
		d := CanRun(o, n.Capacity, n.Policy)
		if d == nil {
			able++
			continue
		}
		if counts[d.Reason] == 0 {
			order = append(order, d.Reason)
		}
		counts[d.Reason]++
	}
	if len(order) == 0 {
		return fmt.Sprintf("%d known node(s) could run it but have not bid yet", able)
	}
	parts := make([]string, len(order))
	for i, r := range order {
		parts[i] = fmt.Sprintf("%d× %s", counts[r], r)
	}
	msg := fmt.Sprintf("%d of %d known node(s) cannot run it: %s", len(nodes)-able, len(nodes), strings.Join(parts, "; "))
	return msg
}

// Waiting says why a job still lacks workers, in words its submitter can
// act on: how many it needs and has, how many bids came, how many known
// miners could run it and what the others lack or ask, what to change,
// and when the job gives up. bids counts the usable bids of the last
// window (not from workers it already has or dropped).
func Waiting(o Offer, nodes []KnownNode, have, total, bids int) string {
	var b strings.Builder
	if have > 0 {
		fmt.Fprintf(&b, "needs %d workers, has %d; %d more bid(s) in the last round", total, have, bids)
	} else {
		fmt.Fprintf(&b, "needs %d worker(s), %d bid(s) in the last round", total, bids)
	}
	able := 0
	if len(nodes) == 0 {
		b.WriteString("; no miners known yet: none has sent a heartbeat")
	} else {
		var declines []string
		counts := map[string]int{}
		for _, n := range nodes {
			if d := CanRun(o, n.Capacity, n.Policy); d != nil {
				if counts[d.Reason] == 0 {
					declines = append(declines, d.Reason)
				}
				counts[d.Reason]++
				continue
			}
			able++
		}
		fmt.Fprintf(&b, "; %d of %d known miner(s) could run it now", able, len(nodes))
		for i, r := range declines {
			declines[i] = fmt.Sprintf("%d× %s", counts[r], r)
		}
		if len(declines) > 0 {
			b.WriteString(" (the others: " + strings.Join(declines, "; ") + ")")
		}
	}
	switch {
	case len(nodes) > 0 && able < total:
		b.WriteString("; lower the redundancy, change what the job asks for, or wait for more miners")
	case len(nodes) > 0:
		b.WriteString("; waiting for their bids")
	}
	fmt.Fprintf(&b, "; gives up at %s (the job's deadline)", time.UnixMilli(o.Spec.Deadline).UTC().Format("2006-01-02 15:04:05 UTC"))
	return b.String()
}

// Serving counts the known miners whose standing terms let them run the
// offer at all: they offer its executor and are paid in its mint. Load,
// free memory and price are left out: they change, and a job waiting on
// them says so (Waiting).
func Serving(o Offer, nodes []KnownNode) int {
	n := 0
	for _, node := range nodes {
		if slices.Contains(node.Policy.Executors, o.Spec.Executor) && node.Policy.Mint == o.Spec.Mint {
			n++
		}
	}
	return n
}
