// Package marketsim runs the real job market (job.Market, job.Worker,
// heartbeat.Service over GossipSub and libp2p streams) on many simulated
// libp2p hosts: QUIC over go-libp2p's x/simlibp2p and simnet, or
// go-libp2p's mocknet (VFT_SIM_TRANSPORT=mocknet: no encryption and no
// packets, lighter at 1,000 nodes), with link latencies and bandwidths,
// inside testing/synctest so that time is virtual. Its tests are the
// simulation; see docs/BENCHMARKS.md ("The market at 1,000 simulated
// nodes") for what is real and what is simulated, and for the figures.
package marketsim
