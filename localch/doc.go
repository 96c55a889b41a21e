// Package localch is seatflow's local ClickHouse: the chDB engine (current
// ClickHouse as a library) behind ClickHouse's HTTP interface, so that
// clickhouse-go/v2 over HTTP, curl and the usual HTTP queries work against it
// on a machine with no ClickHouse server.
//
// The engine is abstracted as Engine so this package builds without the chDB
// library; the chdbengine package binds the real one and cmd/seatflow-chdb
// serves it. chDB runs one session per process, so the Server serialises
// requests and applies each request's settings and database around its query.
package localch
