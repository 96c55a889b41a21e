package clickhouse_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/seatflow/seatflow/pipeline/row"
	"github.com/seatflow/seatflow/sinks/clickhouse"
)

// BenchmarkWriteActivity measures a flush's largest insert: 500k
// user_activity rows, two days of each user and workload folded into one
// row, into the local ClickHouse. Its CPU profile splits the time between
// building the columns here and the server.
func BenchmarkWriteActivity(b *testing.B) {
	env, conn := migrated(b)
	ctx := context.Background()
	w := clickhouse.NewWriter(conn, env.Database)
	workloads := []string{"exchange", "onedrive", "sharepoint", "teams"}
	rows := make([]row.Activity, 250_000)
	for i := range rows {
		user := i / 4
		rows[i] = row.Activity{
			TenantID: fmt.Sprintf("tenant-%04d", user/120), UserID: "tenant-" + strconv.Itoa(user/120) + "-user-" + strconv.Itoa(user%120),
			Workload: workloads[i%len(workloads)], First: oct1, Days: 0b11, Version: 1,
		}
	}
	unfolded := (&row.Set{Activity: rows}).ActivityLen()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Write(ctx, row.Set{Activity: rows}, "bench-"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*unfolded)/b.Elapsed().Seconds(), "rows/s")
}
