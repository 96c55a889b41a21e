package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	tcclickhouse "github.com/testcontainers/testcontainers-go/modules/clickhouse"

	"github.com/seatflow/seatflow/localch/launch"
)

// ClickHouse is a test's ClickHouse: a server and a database of its own.
type ClickHouse struct {
	// DSN is a clickhouse-go DSN whose database is the test's.
	DSN      string
	Database string
	// HTTPURL is the server's HTTP interface, when the test reaches it over
	// HTTP (empty for a native-protocol server).
	HTTPURL string
	Kind    string // "server", "container" or "local"
}

// Open connects with clickhouse-go; the connection closes at cleanup.
func (c *ClickHouse) Open(t testing.TB) driver.Conn {
	t.Helper()
	opts, err := clickhouse.ParseDSN(c.DSN)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatalf("open ClickHouse: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// StartClickHouse gives the test a fresh database, dropped at cleanup.
func StartClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	ctx, cancel := setupContext(t)
	defer cancel()
	base, kind, err := clickHouseServer(ctx)
	if err != nil {
		t.Fatalf("ClickHouse: %v", err)
	}
	db := uniqueName(t)
	c := &ClickHouse{Database: db, Kind: kind, DSN: withDatabase(base, db)}
	if strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://") {
		u, _ := url.Parse(base)
		c.HTTPURL = u.Scheme + "://" + u.Host
	}
	admin := connect(t, base)
	defer admin.Close()
	if err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		admin := connect(t, base)
		defer admin.Close()
		if err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" SYNC"); err != nil {
			t.Logf("drop test database: %v", err)
		}
	})
	return c
}

func connect(t testing.TB, dsn string) driver.Conn {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parse DSN %q: %v", dsn, err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatalf("open ClickHouse: %v", err)
	}
	return conn
}

// withDatabase puts db as the DSN's database (its path).
func withDatabase(dsn, db string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + db
	return u.String()
}

var chShared struct {
	sync.Mutex
	dsn, kind string
}

// clickHouseServer starts (once per process) or names the server.
func clickHouseServer(ctx context.Context) (dsn, kind string, err error) {
	chShared.Lock()
	defer chShared.Unlock()
	if chShared.dsn != "" {
		return chShared.dsn, chShared.kind, nil
	}
	switch {
	case os.Getenv(EnvClickHouse) != "":
		chShared.dsn, chShared.kind = os.Getenv(EnvClickHouse), "server"
	case dockerAvailable():
		ctr, err := tcclickhouse.Run(ctx, "clickhouse/clickhouse-server:25.8",
			tcclickhouse.WithUsername("seatflow"), tcclickhouse.WithPassword("seatflow"))
		if err != nil {
			return "", "", fmt.Errorf("ClickHouse container: %w", err)
		}
		host, err := ctr.ConnectionHost(ctx)
		if err != nil {
			return "", "", err
		}
		atExit(func() { ctr.Terminate(context.Background()) })
		chShared.dsn, chShared.kind = "clickhouse://seatflow:seatflow@"+host+"/default", "container"
	default:
		dir, err := os.MkdirTemp("", "seatflow-test-clickhouse-")
		if err != nil {
			return "", "", err
		}
		srv, err := launch.Start(ctx, launch.Options{DataDir: dir, Log: &prefixWriter{prefix: "local ClickHouse: "}})
		if err != nil {
			os.RemoveAll(dir)
			return "", "", err
		}
		atExit(func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Stop(stopCtx)
			os.RemoveAll(dir)
		})
		chShared.dsn, chShared.kind = srv.URL()+"/default", "local"
	}
	return chShared.dsn, chShared.kind, nil
}

// prefixWriter forwards the local server's warnings and errors to the test
// output; its info lines stay quiet.
type prefixWriter struct{ prefix string }

func (w *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.Contains(line, "panic") {
			fmt.Fprintln(os.Stderr, w.prefix+line)
		}
	}
	return len(b), nil
}

// Strings runs a query whose columns are all strings and returns its rows.
func Strings(t testing.TB, conn driver.Conn, query string) [][]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		rec := make([]string, len(rows.Columns()))
		ptrs := make([]any, len(rec))
		for i := range rec {
			ptrs[i] = &rec[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}
