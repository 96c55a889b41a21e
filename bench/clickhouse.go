package main

import (
	"context"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/localch/launch"
	sink "github.com/seatflow/seatflow/sinks/clickhouse"
)

// localClickHouse starts a throwaway local ClickHouse with seatflow's
// tables; stop removes it.
func localClickHouse(ctx context.Context) (conn driver.Conn, stop func(), err error) {
	dir, err := os.MkdirTemp("", "seatflow-bench-ch-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := launch.Start(ctx, launch.Options{DataDir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop = func() {
		if conn != nil {
			conn.Close()
		}
		srv.Stop(context.Background())
		os.RemoveAll(dir)
	}
	conn, err = clickhouse.Open(&clickhouse.Options{Protocol: clickhouse.HTTP, Addr: []string{srv.Addr}, ReadTimeout: 30 * time.Minute})
	if err == nil {
		_, err = sink.Migrate(ctx, conn, "seatflow")
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return conn, stop, nil
}
