package escrow

import (
	"fmt"
	"slices"

	"github.com/gagliardetto/solana-go"

	"github.com/vft-network/vft/chain"
)

// ReleasePayouts is how a release of t's escrow splits it, whoever sends
// it (the submitter after an accepting verdict, or the agreeing workers
// rescuing a silent submitter's escrow): the reward to each agreeing
// worker, who are the ones asked to approve it, and what is left (the
// dissenters' and absentees' shares) back to the submitter's seat in the
// multisig, its node key, as a refund would. It is the split Approve signs.
func ReleasePayouts(t Terms, agreeing []solana.PublicKey) (payouts []chain.Payout, approvers []solana.PublicKey, err error) {
	if len(agreeing) == 0 {
		return nil, nil, fmt.Errorf("escrow for job %s: a release pays at least one agreeing worker", t.JobID)
	}
	for i, w := range agreeing {
		switch {
		case !slices.Contains(t.Workers, w):
			return nil, nil, fmt.Errorf("escrow for job %s: %s is not one of the job's %d workers", t.JobID, w, len(t.Workers))
		case slices.Contains(agreeing[:i], w):
			return nil, nil, fmt.Errorf("escrow for job %s: %s is listed twice among the agreeing workers", t.JobID, w)
		}
		payouts = append(payouts, chain.Payout{Recipient: w, Amount: t.Reward})
		approvers = append(approvers, w)
	}
	paid := t.Reward * uint64(len(agreeing))
	if paid > t.Amount {
		return nil, nil, fmt.Errorf("escrow for job %s: paying %d workers %d each needs %d, the escrow holds %d", t.JobID, len(agreeing), t.Reward, paid, t.Amount)
	}
	if left := t.Amount - paid; left > 0 {
		payouts = append(payouts, chain.Payout{Recipient: t.Submitter, Amount: left})
	}
	return payouts, approvers, nil
}

// RefundApprovers are the workers a refund of t's escrow asks: all of
// them, since each decides from its own record (Approve) and the
// threshold needs Quorum of them beside the submitter.
func RefundApprovers(t Terms) []solana.PublicKey {
	return slices.Clone(t.Workers)
}

// WorkersToRescue is how many agreeing workers can release the escrow of
// a job with this quorum without the submitter: the multisig's threshold
// (see Threshold).
func WorkersToRescue(quorum int) int {
	return thresholdOf(quorum)
}
