// Package conformance holds the local ClickHouse's conformance suite: tests
// written against clickhouse-go/v2 only, which pass both against the local
// ClickHouse (chDB behind the HTTP interface) and against a real server
// named by SEATFLOW_TEST_CLICKHOUSE (native or HTTP). It has no code of its
// own.
package conformance
