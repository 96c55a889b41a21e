// Package schemas ships seatflow's data contracts as files: the SKU catalog
// (catalog.json) and the ClickHouse migrations (migrations/*.sql). They are embedded so the binary needs no files beside it.
package schemas

import "embed"

// Catalog is the SKU catalog, catalog.json.
//
//go:embed catalog.json
var Catalog []byte

// Migrations are the ClickHouse migrations, applied in name order by
// sinks/clickhouse; {db} stands for the configured database.
//
//go:embed migrations/*.sql
var Migrations embed.FS
