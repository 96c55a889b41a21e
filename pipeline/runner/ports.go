package runner

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/pipeline/row"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/sinks/deadletter"
)

// The runner's ports: where rows, checkpoints and dead letters go, and
// where unit claims and skipped offsets are kept. cmd/seatflow wires
// ClickHouse (sinks/clickhouse) and the dead-letter topic
// (sinks/deadletter); tests may wire stand-ins that keep them in memory.
// Kafka itself, the input and the consumer group, is no port: the tests
// run a real broker.

// RowStore takes each flush's rows.
type RowStore interface {
	// Write inserts rows; the same rows written again with the same
	// token add nothing (a retry after a crash).
	Write(ctx context.Context, rows row.Set, token string) error
	// Retry runs op, an operation on the store that what names, until it
	// succeeds, fails for good or ctx ends, waiting between tries.
	Retry(ctx context.Context, what string, op func() error) error
}

// CheckpointStore keeps each unit's checkpoints and claims (see
// sinks/clickhouse.Checkpoints for what each does).
type CheckpointStore interface {
	Save(ctx context.Context, cps ...clickhouse.Checkpoint) error
	Versions(ctx context.Context, unit int32, n int) ([]uint64, error)
	Load(ctx context.Context, unit int32, version uint64) (clickhouse.Checkpoint, error)
	Prune(ctx context.Context, unit int32, keep int) error
	Claim(ctx context.Context, unit int32, generation int32, member string, atLeast uint64) (uint64, error)
	Superseded(ctx context.Context, unit int32, epoch uint64, generation int32) (bool, error)
	OtherWriters(ctx context.Context) (byUnit map[int]string, all string, err error)
}

// DeadLetterSink takes rejected events.
type DeadLetterSink interface {
	Write(ctx context.Context, entries []deadletter.Entry) (deadletter.Report, error)
}

// SkipStore says which offset ranges an operator skipped.
type SkipStore interface {
	Covering(ctx context.Context, topic string, partition int32, offset int64) (clickhouse.Skip, bool, error)
}

// Ports are what a Runner writes to and reads its own records from.
type Ports struct {
	Rows        RowStore
	Checkpoints CheckpointStore
	DeadLetters DeadLetterSink
	Skips       SkipStore

	hooks *retryHooks // ClickHousePorts': New points them at its runner
}

func (p Ports) check() error {
	if p.Rows == nil || p.Checkpoints == nil || p.DeadLetters == nil || p.Skips == nil {
		return errors.New("runner: every port (rows, checkpoints, dead letters, skips) must be wired")
	}
	return nil
}

// Retrying hears of a failed write that will be tried again (what names
// the table or the topic): the replica is not ready until a write
// succeeds. Wire it to the ports' retry hooks.
func (r *Runner) Retrying(what string, err error) {
	r.ready.Store(false)
	r.cfg.Metrics.SinkErrors.WithLabelValues(what).Inc()
	r.cfg.Log.Warn("write failed; retrying", "to", what, "err", err)
}

// ClickHousePorts are the production ports: rows, checkpoints, claims and
// skips in ClickHouse (the migrations applied first), dead letters in the
// dead-letter topic (checked at once). Their retries reach the runner that
// New makes with them; close them once it has run.
func ClickHousePorts(ctx context.Context, cfg Config, conn driver.Conn) (Ports, func(), error) {
	if _, err := clickhouse.Migrate(ctx, conn, cfg.Database); err != nil {
		return Ports{}, nil, err
	}
	hooks := &retryHooks{}
	writer := clickhouse.NewWriter(conn, cfg.Database)
	writer.OnRetry = hooks.retrying
	dlq, err := deadletter.Open(ctx, deadletter.Config{Brokers: cfg.Brokers, Topic: cfg.DeadLetterTopic, Log: cfg.Log, Transport: transport(cfg.TLS, cfg.SASL),
		OnRetry: func(err error) { hooks.retrying(cfg.DeadLetterTopic, err) }})
	if err != nil {
		return Ports{}, nil, err
	}
	p := Ports{Rows: writer, Checkpoints: clickhouse.NewCheckpoints(conn, cfg.Database, cfg.Group), DeadLetters: dlq,
		Skips: clickhouse.NewSkips(conn, cfg.Database, cfg.Group), hooks: hooks}
	return p, func() { dlq.Close() }, nil
}

// retryHooks pass the ports' retries to the runner made with them.
type retryHooks struct{ r atomic.Pointer[Runner] }

func (h *retryHooks) retrying(what string, err error) {
	if r := h.r.Load(); r != nil {
		r.Retrying(what, err)
	}
}
