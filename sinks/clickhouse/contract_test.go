package clickhouse_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/pipeline/row"
	"github.com/seatflow/seatflow/schemas"
)

// TestMigrationsMatchTheRowContract: every table the pipeline writes has
// the row contract's columns (pipeline/row), names and types, in its
// order. The test's own copy of deployment_daily's migration, with sold
// and trial swapped, is caught.
func TestMigrationsMatchTheRowContract(t *testing.T) {
	env, conn := migrated(t)
	ctx := context.Background()
	if diffs := contractDiffs(ctx, t, conn, env.Database); len(diffs) > 0 {
		t.Fatalf("the migrations and the row contract disagree:\n%s", strings.Join(diffs, "\n"))
	}

	body, err := schemas.Migrations.ReadFile("migrations/0001_tables.sql")
	if err != nil {
		t.Fatal(err)
	}
	create := regexp.MustCompile(`(?s)CREATE TABLE IF NOT EXISTS \{db\}\.deployment_daily.*?;`).Find(body)
	swapped := strings.NewReplacer("sold           UInt64", "trial          UInt64", "trial          UInt64", "sold           UInt64").Replace(string(create))
	if swapped == string(create) {
		t.Fatal("the test's copy of deployment_daily did not change: has 0001_tables.sql's layout changed?")
	}
	for _, q := range []string{"DROP TABLE " + env.Database + ".deployment_daily", strings.ReplaceAll(strings.TrimSuffix(swapped, ";"), "{db}", env.Database)} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	diffs := contractDiffs(ctx, t, conn, env.Database)
	if len(diffs) != 1 || !strings.Contains(diffs[0], "deployment_daily") || !strings.Contains(diffs[0], "sold") {
		t.Errorf("with sold and trial swapped, the check found %q; want deployment_daily named", diffs)
	}
}

// contractDiffs compares each table's insert columns with the contract's.
func contractDiffs(ctx context.Context, t *testing.T, conn driver.Conn, db string) []string {
	t.Helper()
	var diffs []string
	var none row.Set
	for _, b := range none.Batches() {
		rows, err := conn.Query(ctx, "DESCRIBE TABLE "+db+"."+b.Into())
		if err != nil {
			t.Fatal(err)
		}
		var got []row.NameType
		for rows.Next() {
			var name, typ, defaultKind, ignore string
			if err := rows.Scan(&name, &typ, &defaultKind, &ignore, &ignore, &ignore, &ignore); err != nil {
				t.Fatal(err)
			}
			if defaultKind != "MATERIALIZED" && defaultKind != "ALIAS" {
				got = append(got, row.NameType{Name: name, Type: typ})
			}
		}
		rows.Close()
		if want := b.Schema(); fmt.Sprint(got) != fmt.Sprint(want) {
			diffs = append(diffs, fmt.Sprintf("%s: the migrations give\n  %v\nthe contract says\n  %v", b.Into(), got, want))
		}
	}
	return diffs
}
