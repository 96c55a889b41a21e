package runner

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/row"
)

// Metrics are the pipeline's Prometheus metrics (prefix seatflow_).
type Metrics struct {
	Consumed      *prometheus.CounterVec // topic, type
	Rejected      *prometheus.CounterVec // reason
	Late          *prometheus.CounterVec // action: restated | rejected
	Lag           *prometheus.GaugeVec   // topic, partition
	UnitWatermark *prometheus.GaugeVec   // unit
	SinkRows      *prometheus.CounterVec // table
	SinkErrors    *prometheus.CounterVec // table
	FlushDuration prometheus.Histogram
	StateUsers    prometheus.Gauge
	StateTenants  prometheus.Gauge
	StateSKUs     prometheus.Gauge
	// DeadLetters: dead letters written whole, cut to a prefix (too large
	// for the topic), or lost (the topic refused even the prefix).
	DeadLetters *prometheus.CounterVec // outcome: written | truncated | failed
	// scale-out: units worked, rebalances seen, handoff time (assignment
	// to first applied event, restore included), checkpoints skipped as
	// unreadable at a restore
	UnitsAssigned       prometheus.Gauge
	Rebalances          prometheus.Counter
	Handoff             prometheus.Histogram
	CheckpointFallbacks prometheus.Counter
	Checkpoint          prometheus.Histogram
	Unknown             *prometheus.CounterVec // what: sku | workload
	// CorruptBatches is 1 for a partition whose reader stands at a record
	// batch that cannot be read, until an operator skips it.
	CorruptBatches *prometheus.GaugeVec // topic, partition
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Consumed:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seatflow_events_consumed_total", Help: "Events read from Kafka, by topic and event type."}, []string{"topic", "type"}),
		Rejected:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seatflow_events_rejected_total", Help: "Events sent to the dead-letter topic, by reason."}, []string{"reason"}),
		Late:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seatflow_events_late_total", Help: "Events older than the watermark: restated (inside the horizon) or rejected (too_late)."}, []string{"action"}),
		Lag:           prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seatflow_consumer_lag", Help: "Messages not yet processed, per input partition."}, []string{"topic", "partition"}),
		UnitWatermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seatflow_watermark_timestamp_seconds", Help: "The event-time watermark of each unit (partition p of both topics) this replica works."}, []string{"unit"}),
		SinkRows:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seatflow_sink_rows_total", Help: "Rows written to ClickHouse, by table."}, []string{"table"}),
		SinkErrors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seatflow_sink_errors_total", Help: "Failed ClickHouse inserts and checkpoint saves (retried), by table."}, []string{"table"}),
		FlushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seatflow_sink_flush_duration_seconds", Help: "Time to compute and write one flush.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		StateUsers:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "seatflow_state_users", Help: "Users tracked in the figure state."}),
		StateTenants:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "seatflow_state_tenants", Help: "Tenants tracked in the figure state."}),
		StateSKUs:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "seatflow_state_tenant_skus", Help: "(tenant, SKU) pairs tracked in the figure state."}),
		UnitsAssigned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seatflow_units_assigned", Help: "Units (partition p of both topics) this replica works."}),
		Rebalances:    prometheus.NewCounter(prometheus.CounterOpts{Name: "seatflow_rebalances_total", Help: "Consumer-group generations this replica has joined."}),
		Handoff: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seatflow_unit_handoff_seconds", Help: "From a unit's assignment to its first applied event, its restore included.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		CheckpointFallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "seatflow_checkpoint_fallbacks_total", Help: "Checkpoints found unreadable at a restore, so that an older one was used."}),
		DeadLetters:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seatflow_dead_letters_total", Help: "Dead letters by outcome: written whole, truncated (a prefix kept: too large for the topic), failed (not written, logged)."}, []string{"outcome"}),
		Checkpoint:          prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seatflow_checkpoint_duration_seconds", Help: "Time to write a checkpoint (state + offsets).", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		Unknown:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seatflow_events_unknown_total", Help: "Accepted events the SKU catalog does not describe: what = sku | workload."}, []string{"what"}),
		CorruptBatches: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seatflow_corrupt_batches",
			Help: "1 while the partition's reader stands at a record batch that cannot be read (see /readyz and seatflow skip-batch)."}, []string{"topic", "partition"}),
	}
	// Every reason's series exists from the start, at 0, so rate() alerts
	// work before the first reject.
	for _, r := range event.Reasons {
		m.Rejected.WithLabelValues(string(r))
	}
	for _, t := range row.Tables() {
		m.SinkRows.WithLabelValues(t)
		m.SinkErrors.WithLabelValues(t)
	}
	for _, o := range []string{"written", "truncated", "failed"} {
		m.DeadLetters.WithLabelValues(o)
	}
	reg.MustRegister(m.Consumed, m.Rejected, m.Late, m.Lag, m.UnitWatermark, m.UnitsAssigned, m.Rebalances, m.Handoff, m.CheckpointFallbacks, m.SinkRows, m.SinkErrors, m.FlushDuration, m.StateUsers,
		m.StateTenants, m.StateSKUs, m.DeadLetters, m.Checkpoint, m.Unknown, m.CorruptBatches)
	return m
}
