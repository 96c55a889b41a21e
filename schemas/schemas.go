// Package schemas ships seatflow's data contracts as files: the SKU catalog
// (catalog.json) and, later, the event JSON schemas and ClickHouse
// migrations. They are embedded so the binary needs no files beside it.
package schemas

import _ "embed"

// Catalog is the SKU catalog, catalog.json.
//
//go:embed catalog.json
var Catalog []byte
