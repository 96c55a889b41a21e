package conformance_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seatflow/seatflow/testenv"
)

// BenchmarkBatchInsert measures clickhouse-go/v2 batch inserts of 8-column
// rows (the shape of a usage_daily row) into the ClickHouse under test.
func BenchmarkBatchInsert(b *testing.B) {
	ch := testenv.StartClickHouse(b)
	conn := ch.Open(b)
	ctx := context.Background()
	if err := conn.Exec(ctx, `CREATE TABLE bench (tenant_id String, sku LowCardinality(String), workload LowCardinality(String),
		date Date, active_users UInt32, qualified UInt32, usage_pct Nullable(Float64), version UInt64)
		ENGINE = ReplacingMergeTree(version) ORDER BY (tenant_id, sku, workload, date)`); err != nil {
		b.Fatal(err)
	}
	const rows = 200_000
	day := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO bench")
		if err != nil {
			b.Fatal(err)
		}
		for r := 0; r < rows; r++ {
			pct := float64(r%100) + 0.5
			if err := batch.Append(fmt.Sprint("t-", r%5000), "O365_E3", "teams", day, uint32(r%97), uint32(100), &pct, uint64(i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
