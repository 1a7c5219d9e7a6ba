// Package escrow lets a miner work for a submitter it does not know: before
// work starts the submitter locks the reward in a token account owned by an
// SPL Token multisig of itself and the job's workers (chain.OpenEscrow);
// each worker checks that escrow on chain before executing (CheckEscrow);
// afterwards the submitter collects the signatures a release (to the
// agreeing workers) or a refund (to itself) needs over libp2p, protocol
// /vft/escrow/1, and settles it through the crash-safe chain.Journal.
//
// A worker signs nothing it has not taken apart first: the transaction
// must move exactly the agreed payouts out of this job's escrow and do
// nothing else, and the node's own job record must approve it.
//
// The package knows payouts and keys, not the market: it must not import
// job/ or node/. The node composes it (NewService) and supplies Approve.
package escrow

import "fmt"

// MaxWorkers is the most workers an escrow can hold: an SPL Token multisig
// has at most 11 signers, and the submitter is one of them.
const MaxWorkers = 10

// Threshold returns the multisig of a job with k workers of which m must
// agree (the verified quorum): signers is the submitter plus the k workers,
// threshold is m+1.
//
// Why m+1, and who can steal:
//   - A release paying the m agreeing workers must be signable by the
//     submitter and those m workers: threshold <= m+1.
//   - The submitter must not take the money back after the work was done
//     with fewer than m workers on its side (a refund is the verifiers'
//     call, and m is what verification trusts): the submitter plus m-1
//     workers must fall short, so threshold >= m+1.
//   - Without the submitter, m+1 workers can move the funds. With k <= m+1
//     (e.g. 2 of 3) that is all k workers; with a larger k it is more
//     workers than the quorum, who can already have a false result
//     accepted, so the escrow adds no new way to cheat.
//
// What it cannot stop: k workers (or m+1) colluding; a submitter with m
// sybil workers; and funds locked for good when the submitter and enough
// workers stop answering, because SPL Token has no timelock. See
// docs/PROTOCOL.md, "Escrow and who can steal".
func Threshold(k, m int) (signers, threshold int, err error) {
	if k < 1 || k > MaxWorkers {
		return 0, 0, fmt.Errorf("escrow: %d workers: want 1 to %d (an SPL multisig has at most 11 signers, one is the submitter)", k, MaxWorkers)
	}
	if m < 1 || m > k {
		return 0, 0, fmt.Errorf("escrow: quorum %d of %d workers: want 1 <= quorum <= workers", m, k)
	}
	return k + 1, thresholdOf(m), nil
}

// thresholdOf is the multisig threshold of a job with quorum m: m + 1.
func thresholdOf(m int) int { return m + 1 }
