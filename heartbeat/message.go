// Package heartbeat is how a node tells the network what it can run right
// now, and how every node keeps a live table of the others without any
// registration: miners and edge devices publish a signed capability message
// on /vft/1/heartbeat at an interval; a node is in the table because it
// sends them, and drops out after missing three.
package heartbeat

import (
	"fmt"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// TopicName is the GossipSub topic heartbeats travel on.
const TopicName = "/vft/1/heartbeat"

// Kind is the wire kind of a heartbeat envelope. heartbeat/2 added the
// optional keys that say how to reach the sender and how it runs
// containers (addrs, reachability, oci_runtime, gpu_access); heartbeat/1
// was never released.
const Kind = "heartbeat/2"

// Bounds a receiver enforces.
const (
	// MaxSize bounds one heartbeat: a rig with 16 GPUs fits in a few KiB.
	MaxSize = 16 << 10
	// MaxFuture is the clock skew tolerated ahead of the receiver.
	MaxFuture = 30 * time.Second
	// MaxAge is how old a heartbeat may be when it arrives.
	MaxAge = 2 * time.Minute
	// MinInterval and MaxInterval bound the interval a sender announces,
	// which sets how long its entry lives: a sender cannot stay listed for
	// a day by claiming a day-long interval.
	MinInterval = 5 * time.Second
	MaxInterval = 30 * time.Minute
	// MissedBeats is how many intervals an entry survives without news.
	MissedBeats = 3
	// MaxAddrs and MaxAddrLen bound the addresses a heartbeat announces:
	// a node behind NAT has a few relay addresses, a public one its
	// listen addresses.
	MaxAddrs   = 8
	MaxAddrLen = 256
)

// NetworkBeatRate is how many heartbeats per second the whole network
// carries once it is large. Every node hears every heartbeat, so at a fixed
// interval each node's traffic grows with the network; instead each node
// stretches its interval to (nodes in the network ÷ this rate), so that
// each node receives about this many heartbeats per second whatever the
// network's size (see ScaledInterval and docs/BENCHMARKS.md).
const NetworkBeatRate = 10.0

// ScaledInterval is the interval of a node configured for `configured` in
// a network of n nodes: n / rate, never below configured nor above
// MaxInterval, in whole seconds.
func ScaledInterval(configured time.Duration, n int, rate float64) time.Duration {
	scaled := time.Duration(float64(n) / rate * float64(time.Second)).Round(time.Second)
	return min(MaxInterval, max(configured, scaled))
}

// Heartbeat is the body of a heartbeat message: what the sender offers now.
type Heartbeat struct {
	Mode        string `cbor:"mode"`
	Version     string `cbor:"version"`
	UptimeSec   uint64 `cbor:"uptime_s"`
	IntervalSec uint32 `cbor:"interval_s"`
	// NetworkSize is the sender's estimate of how many nodes beat on the
	// topic; a node that has just joined takes the others' word for it
	// (the median) before its own table fills.
	NetworkSize uint32 `cbor:"network_size"`
	// Executors offered, e.g. ["wasm"] or ["wasm","native"].
	Executors []string `cbor:"executors"`
	// PriceFloor is the least the node accepts per job, in the smallest
	// unit of Mint (lamports when Mint is empty).
	PriceFloor uint64 `cbor:"price_floor"`
	Mint       string `cbor:"mint"`
	// Free capacity: job slots, CPU cores, memory.
	FreeSlots       uint32 `cbor:"free_slots"`
	CPUCores        uint32 `cbor:"cpu_cores"`
	MemoryBytes     uint64 `cbor:"memory_bytes"`
	FreeMemoryBytes uint64 `cbor:"free_memory_bytes"`
	GPUs            []GPU  `cbor:"gpus"`

	// How to reach the sender, for the network table: its public or
	// relay addresses (multiaddrs without /p2p/ of its own), and whether
	// AutoNAT found it "public" or "private" (behind NAT: reachable
	// through the relays among Addrs). Receivers show them; they dial
	// through the DHT's records, not these.
	Addrs        []string `cbor:"addrs,omitempty"`
	Reachability string   `cbor:"reachability,omitempty"`
	// How the sender runs oci jobs: the OCI runtime ("runc", "crun") and
	// how it gives GPUs to containers ("cdi", or "nvml" when it injects
	// the devices NVML found itself). Empty: no oci executor, or no GPUs.
	OCIRuntime string `cbor:"oci_runtime,omitempty"`
	GPUAccess  string `cbor:"gpu_access,omitempty"`
}

// Values of Reachability and GPUAccess.
const (
	ReachabilityPublic  = "public"
	ReachabilityPrivate = "private"
	GPUAccessCDI        = "cdi"
	GPUAccessNVML       = "nvml"
)

// GPU is one GPU the sender offers to jobs.
type GPU struct {
	Name              string `cbor:"name"`
	MemoryBytes       uint64 `cbor:"memory_bytes"`
	FreeMemoryBytes   uint64 `cbor:"free_memory_bytes"`
	ComputeCapability string `cbor:"cc"`
	UtilPercent       uint32 `cbor:"util"`
}

// maxRuntimeName bounds oci_runtime: a program name.
const maxRuntimeName = 32

// CheckOptional checks the keys heartbeat/2 added: bounded, and each one
// of the values the protocol defines.
func (hb Heartbeat) CheckOptional() error {
	if len(hb.Addrs) > MaxAddrs {
		return fmt.Errorf("heartbeat announces %d addresses, at most %d", len(hb.Addrs), MaxAddrs)
	}
	for _, a := range hb.Addrs {
		if len(a) > MaxAddrLen {
			return fmt.Errorf("heartbeat address of %d bytes, at most %d", len(a), MaxAddrLen)
		}
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("heartbeat address %q is not a multiaddr: %w", a, err)
		}
	}
	switch hb.Reachability {
	case "", ReachabilityPublic, ReachabilityPrivate:
	default:
		return fmt.Errorf("heartbeat reachability %q is neither %q nor %q", hb.Reachability, ReachabilityPublic, ReachabilityPrivate)
	}
	switch hb.GPUAccess {
	case "", GPUAccessCDI, GPUAccessNVML:
	default:
		return fmt.Errorf("heartbeat gpu_access %q is neither %q nor %q", hb.GPUAccess, GPUAccessCDI, GPUAccessNVML)
	}
	if len(hb.OCIRuntime) > maxRuntimeName {
		return fmt.Errorf("heartbeat oci_runtime of %d bytes, at most %d", len(hb.OCIRuntime), maxRuntimeName)
	}
	for _, r := range hb.OCIRuntime {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("heartbeat oci_runtime %q is not a program name (a-z, 0-9, -, _, .)", hb.OCIRuntime)
		}
	}
	return nil
}
