package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/localch/launch"
)

// OwnClickHouse is a local ClickHouse of the test's own, for tests that
// stop it (Kill, as a crash) and start it again (Restart) on the same
// address and data. Conn reaches it over HTTP and survives restarts.
type OwnClickHouse struct {
	Conn driver.Conn
	srv  *launch.Server
	dir  string
}

// StartOwnClickHouse starts it; it stops at cleanup. Tests pointed at a real
// server (SEATFLOW_TEST_CLICKHOUSE) are skipped: that one is not theirs to stop.
func StartOwnClickHouse(t testing.TB) *OwnClickHouse {
	t.Helper()
	if os.Getenv(EnvClickHouse) != "" {
		t.Skip("stops and starts a local ClickHouse of its own")
	}
	o := &OwnClickHouse{dir: t.TempDir()}
	o.start(t, "")
	conn, err := clickhouse.Open(&clickhouse.Options{Protocol: clickhouse.HTTP, Addr: []string{o.srv.Addr}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	o.Conn = conn
	t.Cleanup(func() {
		conn.Close()
		o.srv.Stop(context.Background())
	})
	return o
}

func (o *OwnClickHouse) start(t testing.TB, addr string) {
	t.Helper()
	srv, err := launch.Start(context.Background(), launch.Options{DataDir: o.dir, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	o.srv = srv
}

// Kill ends the server with SIGKILL.
func (o *OwnClickHouse) Kill() { o.srv.Kill() }

// Restart starts it again on the same address and data.
func (o *OwnClickHouse) Restart(t testing.TB) { o.start(t, o.srv.Addr) }
