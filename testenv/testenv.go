// Package testenv gives integration tests a real Kafka and a real
// ClickHouse, isolated per test: own topics, own database.
//
// Where they come from, in order:
//  1. servers named by SEATFLOW_TEST_KAFKA (comma-separated brokers) and
//     SEATFLOW_TEST_CLICKHOUSE (a clickhouse-go DSN, native or HTTP);
//  2. the official apache/kafka and clickhouse/clickhouse-server images
//     through testcontainers-go, when a Docker engine answers;
//  3. the embedded broker (localkafka, one per test) and the local
//     ClickHouse (the chDB engine behind the HTTP interface, one per test
//     process).
//
// A package using it calls Main from its TestMain, so that the shared
// servers stop when its tests end.
package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables that name real servers.
const (
	EnvKafka      = "SEATFLOW_TEST_KAFKA"
	EnvClickHouse = "SEATFLOW_TEST_CLICKHOUSE"
)

// shared holds the servers one test process shares between its tests; Main
// stops them. Tests need process-wide servers, so this is the one piece of
// package state, guarded by its mutex.
var shared struct {
	sync.Mutex
	stops []func()
}

func atExit(stop func()) {
	shared.Lock()
	defer shared.Unlock()
	shared.stops = append(shared.stops, stop)
}

// Main runs the tests and stops the shared servers.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	for i := len(shared.stops) - 1; i >= 0; i-- {
		shared.stops[i]()
	}
	shared.Unlock()
	os.Exit(code)
}

// uniqueName is a name no other test (or test process) uses.
func uniqueName(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t_%s_%x", name, rand.Uint32())
}

func setupContext(t testing.TB) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithTimeout(context.Background(), 5*time.Minute)
}
