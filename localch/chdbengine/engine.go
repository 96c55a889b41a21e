// Package chdbengine binds the chDB library (the ClickHouse engine as a
// shared library) as a localch.Engine.
//
// Importing this package loads libchdb.so at init and panics when it is
// missing (chdb-go's behaviour), so only cmd/seatflow-chdb imports it; the
// launcher in localch/launch fetches the library and names it in
// CHDB_LIB_PATH before it starts that binary.
package chdbengine

import (
	"errors"
	"fmt"

	chdbpurego "github.com/chdb-io/chdb-go/chdb-purego"
)

// Engine is a chDB session on one data directory. chDB allows one per
// process.
type Engine struct {
	conn chdbpurego.ChdbConn
}

// Open starts the engine on dataDir, creating it if needed.
func Open(dataDir string) (*Engine, error) {
	conn, err := chdbpurego.NewConnectionFromConnString(dataDir)
	if err != nil {
		return nil, fmt.Errorf("open chDB at %s: %w", dataDir, err)
	}
	return &Engine{conn: conn}, nil
}

// Query runs one statement and copies its output out of chDB's buffer.
func (e *Engine) Query(query, format string) ([]byte, error) {
	res, err := e.conn.Query(query, format)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, nil
	}
	defer res.Free()
	if err := res.Error(); err != nil {
		return nil, err
	}
	buf := res.Buf()
	if len(buf) == 0 {
		return nil, nil
	}
	return append([]byte(nil), buf...), nil
}

// Close stops the engine, flushing its tables.
func (e *Engine) Close() error {
	if e.conn == nil {
		return errors.New("chDB engine already closed")
	}
	e.conn.Close()
	e.conn = nil
	return nil
}
