package node

import (
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vft-network/vft/hwdetect"
	"github.com/vft-network/vft/job"
)

// nodeMetrics are the job, GPU, settlement and byte-count series on
// /metrics, next to libp2p's own (libp2p_swarm_*, libp2p_rcmgr_*, ...).
type nodeMetrics struct {
	jobs        *prometheus.CounterVec
	stages      *prometheus.HistogramVec
	executors   *prometheus.HistogramVec
	gpuUtil     *prometheus.GaugeVec
	gpuMemUsed  *prometheus.GaugeVec
	gpuTemp     *prometheus.GaugeVec
	settlements *prometheus.CounterVec

	changes *transitions
}

// durationBuckets span 50 ms (an offer assigned on a LAN) to ~45 min (a
// long GPU job).
var durationBuckets = prometheus.ExponentialBuckets(0.05, 2, 16)

func newNodeMetrics(reg prometheus.Registerer) *nodeMetrics {
	m := &nodeMetrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vft_jobs_total", Help: "Job state transitions on this node, by role and the state entered.",
		}, []string{"role", "state"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vft_job_stage_seconds", Help: "Time jobs spent in each stage, observed when they leave it.",
			Buckets: durationBuckets,
		}, []string{"role", "stage"}),
		executors: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vft_executor_seconds", Help: "Time this worker's executor ran a job, by executor and outcome.",
			Buckets: durationBuckets,
		}, []string{"executor", "outcome"}),
		gpuUtil: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vft_gpu_utilization_ratio", Help: "GPU utilisation (0..1) as NVML reports it.",
		}, []string{"gpu"}),
		gpuMemUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vft_gpu_memory_used_bytes", Help: "GPU memory in use.",
		}, []string{"gpu"}),
		gpuTemp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vft_gpu_temperature_celsius", Help: "GPU core temperature.",
		}, []string{"gpu"}),
		settlements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vft_settlements_total", Help: "Settlements of jobs on chain, by outcome.",
		}, []string{"outcome"}),
		changes: newTransitions(),
	}
	reg.MustRegister(m.jobs, m.stages, m.executors, m.gpuUtil, m.gpuMemUsed, m.gpuTemp, m.settlements)
	return m
}

// observe is the job book's watcher: it counts each new transition and
// times the stage the job just left.
func (m *nodeMetrics) observe(rec job.Record) {
	for _, i := range m.changes.fresh(rec) {
		to := rec.History[i]
		m.jobs.WithLabelValues(string(rec.Role), string(to.State)).Inc()
		if i == 0 {
			continue
		}
		from := rec.History[i-1]
		spent := to.At.Sub(from.At).Seconds()
		m.stages.WithLabelValues(string(rec.Role), string(from.State)).Observe(spent)
		if rec.Role == job.RoleWorker && from.State == job.StateRunning {
			m.executors.WithLabelValues(executorOf(rec), runOutcome(to.State)).Observe(spent)
		}
	}
}

// settled counts a settlement attempt's outcome: "confirmed" (paid),
// "refused" (the chain or the wallet will not pay; the job fails) or
// "retry" (the chain did not answer; the job stays settling).
func (m *nodeMetrics) settled(outcome string) {
	m.settlements.WithLabelValues(outcome).Inc()
}

// gpus sets the GPU gauges to the latest readings; GPUs that are gone
// (excluded, lost) disappear from the series. A reading NVML could not
// give is left out rather than reported as 0.
func (m *nodeMetrics) gpus(gpus []hwdetect.GPU) {
	m.gpuUtil.Reset()
	m.gpuMemUsed.Reset()
	m.gpuTemp.Reset()
	for _, g := range gpus {
		label := strconv.Itoa(g.Index)
		if _, ok := g.Unavailable["utilization_gpu_percent"]; !ok {
			m.gpuUtil.WithLabelValues(label).Set(float64(g.UtilizationGPUPercent) / 100)
		}
		if _, ok := g.Unavailable["memory_used_bytes"]; !ok {
			m.gpuMemUsed.WithLabelValues(label).Set(float64(g.MemoryUsedBytes))
		}
		if _, ok := g.Unavailable["temperature_c"]; !ok {
			m.gpuTemp.WithLabelValues(label).Set(float64(g.TemperatureC))
		}
	}
}

// runOutcome names how an executor run ended by the state that followed.
func runOutcome(s job.State) string {
	switch s {
	case job.StateVerifying:
		return "ok"
	case job.StateAssigned:
		return "retried"
	default:
		return string(s) // failed, cancelled
	}
}

// executorOf reads the executor from the job's signed offer, checked as
// of the job's first record (the offer was fresh then).
func executorOf(rec job.Record) string {
	if len(rec.History) == 0 {
		return "unknown"
	}
	o, err := job.OpenOffer(rec.Offer, rec.History[0].At)
	if err != nil || o.Spec.Executor == "" {
		return "unknown"
	}
	return o.Spec.Executor
}

// transitions tells which history entries of a record are new since the
// record was last seen, so that watchers count each transition once even
// though the book also notifies them of edits that change no state.
type transitions struct {
	mu   sync.Mutex
	seen map[string]int // job ID → history length last seen
}

func newTransitions() *transitions { return &transitions{seen: map[string]int{}} }

// fresh returns the indexes of rec.History not seen before. A job not
// seen yet (created, or resumed after a restart) counts only its newest
// change, and only if this save made it: Create and Move stamp the record
// and its last change with the same instant, Update does not.
func (t *transitions) fresh(rec job.Record) []int {
	n := len(rec.History)
	if n == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, ok := t.seen[rec.ID]
	if !ok {
		prev = n
		if rec.History[n-1].At.Equal(rec.UpdatedAt) {
			prev = n - 1
		}
	}
	if rec.State.Terminal() {
		delete(t.seen, rec.ID) // finished: keep the map as small as the live jobs
	} else {
		t.seen[rec.ID] = n
	}
	var out []int
	for i := prev; i < n; i++ {
		out = append(out, i)
	}
	return out
}

// stageDuration is how long a change's stage lasted, for log lines.
func stageDuration(rec job.Record, i int) time.Duration {
	if i <= 0 || i >= len(rec.History) {
		return 0
	}
	return rec.History[i].At.Sub(rec.History[i-1].At)
}

// bandwidthStats is what a libp2p BandwidthCounter reports.
type bandwidthStats interface {
	GetBandwidthTotals() metrics.Stats
	GetBandwidthByProtocol() map[protocol.ID]metrics.Stats
}

// bandwidth returns the reporter the host counts bytes with, creating
// one when the caller gave none, and exports its totals: libp2p's own
// Prometheus metrics count connections and streams but no bytes.
func (m *nodeMetrics) bandwidth(given metrics.Reporter, reg prometheus.Registerer) metrics.Reporter {
	if given == nil {
		given = metrics.NewBandwidthCounter()
	}
	if stats, ok := given.(bandwidthStats); ok {
		reg.MustRegister(bandwidthCollector{stats})
	}
	return given
}

var (
	bytesDesc = prometheus.NewDesc("vft_p2p_bytes_total",
		"Bytes this node sent (out) and received (in) over libp2p.", []string{"direction"}, nil)
	protocolBytesDesc = prometheus.NewDesc("vft_p2p_protocol_bytes_total",
		"Bytes over libp2p streams by protocol (bitswap, gossipsub, kad, the market's).", []string{"protocol", "direction"}, nil)
)

// bandwidthCollector reads the counter at scrape time.
type bandwidthCollector struct{ stats bandwidthStats }

func (b bandwidthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- bytesDesc
	ch <- protocolBytesDesc
}

func (b bandwidthCollector) Collect(ch chan<- prometheus.Metric) {
	t := b.stats.GetBandwidthTotals()
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(t.TotalIn), "in")
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(t.TotalOut), "out")
	for p, s := range b.stats.GetBandwidthByProtocol() {
		if p == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(protocolBytesDesc, prometheus.CounterValue, float64(s.TotalIn), string(p), "in")
		ch <- prometheus.MustNewConstMetric(protocolBytesDesc, prometheus.CounterValue, float64(s.TotalOut), string(p), "out")
	}
}
