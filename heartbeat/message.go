// Package heartbeat is how a node tells the network what it can run right
// now, and how every node keeps a live table of the others without any
// registration: miners and edge devices publish a signed capability message
// on /vft/1/heartbeat at an interval; a node is in the table because it
// sends them, and drops out after missing three.
package heartbeat

import "time"

// TopicName is the GossipSub topic heartbeats travel on.
const TopicName = "/vft/1/heartbeat"

// Kind is the wire kind of a heartbeat envelope.
const Kind = "heartbeat/1"

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
}

// GPU is one GPU the sender offers to jobs.
type GPU struct {
	Name              string `cbor:"name"`
	MemoryBytes       uint64 `cbor:"memory_bytes"`
	FreeMemoryBytes   uint64 `cbor:"free_memory_bytes"`
	ComputeCapability string `cbor:"cc"`
	UtilPercent       uint32 `cbor:"util"`
}
