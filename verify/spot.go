package verify

// Spot checks re-run a job only with probability p. That deters cheating
// only if a worker cannot tell which of its jobs will be checked, so the
// draw is keyed by a secret only the submitter holds (the market uses its
// signature over "vft/spot/"‖jobID): workers know the job ID, never the
// secret. The submitter can later reveal the secret to show the draw was
// honest. The verifier itself is then chosen like any worker, by Choose
// among the job's other bidders.

// SpotDraw reports whether the job whose secret this is gets spot-checked:
// SHA-256(secret ‖ "spot") read as a number in [0,1), below p.
func SpotDraw(secret []byte, p float64) bool {
	return draw(secret, "spot") < p
}
