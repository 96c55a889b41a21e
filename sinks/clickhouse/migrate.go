// Package clickhouse is seatflow's ClickHouse output: it applies the
// migrations in schemas/migrations and writes snapshot rows.
package clickhouse

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/schemas"
)

var databaseName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Migrate creates the database and applies, in name order, the migrations
// not yet recorded in its schema_migrations table. Statements are
// idempotent (IF NOT EXISTS), so a run cut off half-way is simply run
// again. It returns the migrations it applied.
func Migrate(ctx context.Context, conn driver.Conn, db string) ([]string, error) {
	if !databaseName.MatchString(db) {
		return nil, fmt.Errorf("database name %q: use letters, digits and _", db)
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db, err)
	}
	if err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+db+".schema_migrations (version String, applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version"); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	done := map[string]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM "+db+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}

	names, err := fs.Glob(schemas.Migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var applied []string
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		if done[version] {
			continue
		}
		body, err := fs.ReadFile(schemas.Migrations, name)
		if err != nil {
			return applied, err
		}
		for i, stmt := range statements(string(body)) {
			if err := conn.Exec(ctx, strings.ReplaceAll(stmt, "{db}", db)); err != nil {
				return applied, fmt.Errorf("migration %s, statement %d: %w", version, i+1, err)
			}
		}
		if err := conn.Exec(ctx, "INSERT INTO "+db+".schema_migrations (version) VALUES (?)", version); err != nil {
			return applied, fmt.Errorf("record migration %s: %w", version, err)
		}
		applied = append(applied, version)
	}
	return applied, nil
}

// statements splits a migration file on semicolons that end a line,
// dropping comment lines.
func statements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
