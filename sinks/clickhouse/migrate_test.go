package clickhouse_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/seatflow/seatflow/schemas"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigrateIsIdempotentAndPortfolioViewWorks(t *testing.T) {
	ch := testenv.StartClickHouse(t)
	conn := ch.Open(t)
	ctx := context.Background()
	db := ch.Database
	applied, err := clickhouse.Migrate(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := schemas.Migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(entries) || len(applied) < 5 {
		t.Fatalf("applied %v, want all %d migrations", applied, len(entries))
	}
	again, err := clickhouse.Migrate(ctx, conn, db)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run applied %v, %v: want nothing", again, err)
	}
	for _, q := range []string{
		"INSERT INTO " + db + ".subscriptions VALUES ('t-1','s-1','O365_E3','p-7','active',0,10,'2026-10-01 09:00:00',1), ('t-2','s-9','O365_E3','p-7','active',0,5,'2026-10-01 09:00:00',1), ('t-2','s-8','O365_E3','','active',0,5,'2026-10-01 09:00:00',1)",
		"INSERT INTO " + db + ".deployment_daily VALUES ('t-1','O365_E3','2026-10-02','Office 365',10,0,8,8,80,1,1), ('t-2','O365_E3','2026-10-02','Office 365',10,0,10,10,100,0,1), ('t-1','O365_E3','2026-10-02','Office 365',10,0,9,9,90,1,2)",
		"INSERT INTO " + db + ".usage_daily VALUES ('t-1','O365_E3','all','2026-10-02',9,9,100,1,2), ('t-2','O365_E3','all','2026-10-02',5,10,50,0,1)",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var partner string
	var tenants, sold, assigned, active uint64
	var final uint8
	var dpct, upct *float64
	rows, err := conn.Query(ctx, "SELECT partner_id, tenants, sold, assigned, active_users, deployment_pct, usage_pct, final FROM "+db+".portfolio_daily ORDER BY partner_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		if err := rows.Scan(&partner, &tenants, &sold, &assigned, &active, &dpct, &upct, &final); err != nil {
			t.Fatal(err)
		}
		got = append(got, partner)
		if partner == "p-7" && (tenants != 2 || sold != 20 || assigned != 19 || active != 14 || *dpct != 95 || *upct != 100*14.0/19 || final != 0) {
			t.Errorf("p-7 portfolio: tenants=%d sold=%d assigned=%d active=%d dpct=%v upct=%v final=%d", tenants, sold, assigned, active, *dpct, *upct, final)
		}
		if partner == "" && (tenants != 1 || sold != 10) {
			t.Errorf("direct portfolio: tenants=%d sold=%d", tenants, sold)
		}
	}
	if len(got) != 2 {
		t.Errorf("partners %q, want direct and p-7", got)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	env, conn := migrated(t)
	ctx := context.Background()
	cps := clickhouse.NewCheckpoints(conn, env.Database, "group-a")
	if _, err := cps.Latest(ctx, 0); err != clickhouse.ErrNoCheckpoint {
		t.Fatalf("empty: %v, want ErrNoCheckpoint", err)
	}
	state := make([]byte, 3<<20)
	for i := range state {
		state[i] = byte(i * 7 % 251)
	}
	for v := uint64(1); v <= 4; v++ {
		if err := cps.Save(ctx, clickhouse.Checkpoint{Unit: 0, Version: v, Offsets: map[string]int64{"usage/0": int64(10 * v)}, State: state[:len(state)-int(v)]}); err != nil {
			t.Fatal(err)
		}
	}
	// a flush's units in one save, each whole
	if err := cps.Save(ctx, clickhouse.Checkpoint{Unit: 1, Version: 9, Offsets: map[string]int64{"usage/1": 5}, State: state[:10]},
		clickhouse.Checkpoint{Unit: 2, Version: 3, Offsets: map[string]int64{"usage/2": 6, "license/2": 2}, State: state[5:]}); err != nil {
		t.Fatal(err)
	}
	if cp, err := cps.Latest(ctx, 2); err != nil || cp.Version != 3 || fmt.Sprint(cp.Offsets) != "map[license/2:2 usage/2:6]" || string(cp.State) != string(state[5:]) {
		t.Errorf("unit 2 saved with unit 1: version %d offsets %v state %d bytes (%v)", cp.Version, cp.Offsets, len(cp.State), err)
	}
	other := clickhouse.NewCheckpoints(conn, env.Database, "group-b")
	if _, err := other.Latest(ctx, 0); err != clickhouse.ErrNoCheckpoint {
		t.Errorf("another group sees a checkpoint: %v", err)
	}
	cp, err := cps.Latest(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Version != 4 || cp.Offsets["usage/0"] != 40 || string(cp.State) != string(state[:len(state)-4]) {
		t.Errorf("latest: version %d offsets %v state %d bytes", cp.Version, cp.Offsets, len(cp.State))
	}
	if err := cps.Prune(ctx, 0, 2); err != nil {
		t.Fatal(err)
	}
	if vs, err := cps.Versions(ctx, 0, 10); err != nil || fmt.Sprint(vs) != "[4 3]" {
		t.Errorf("unit 0 after keeping 2: versions %v (%v), want [4 3]", vs, err)
	}
	if cp, err := cps.Latest(ctx, 1); err != nil || cp.Version != 9 {
		t.Errorf("unit 1: version %d (%v), want 9: pruning unit 0 must not touch it", cp.Version, err)
	}
}

// TestClaims: each claim of a unit gets a higher epoch, above the
// restored checkpoint's; a claim that finds a later one loses.
func TestClaims(t *testing.T) {
	env, conn := migrated(t)
	ctx := context.Background()
	cps := clickhouse.NewCheckpoints(conn, env.Database, "group-a")
	e1, err := cps.Claim(ctx, 3, 5, "a", 0)
	if err != nil || e1 != 1 {
		t.Fatalf("first claim: %d %v, want 1", e1, err)
	}
	if e2, err := cps.Claim(ctx, 3, 6, "b", 7); err != nil || e2 != 8 {
		t.Fatalf("claim above a checkpoint of epoch 7: %d %v, want 8", e2, err)
	}
	if e, err := cps.Claim(ctx, 4, 6, "b", 0); err != nil || e != 1 {
		t.Fatalf("another unit's first claim: %d %v, want 1", e, err)
	}
	// two members that read the claims at once both claim epoch 8: the
	// one of the later generation keeps it
	for _, c := range []struct {
		epoch      uint64
		generation int32
		want       bool
	}{{8, 5, true}, {8, 6, false}, {8, 7, false}, {7, 9, true}, {9, 1, false}} {
		t.Run(fmt.Sprintf("epoch %d of generation %d", c.epoch, c.generation), func(t *testing.T) {
			if lost, err := cps.Superseded(ctx, 3, c.epoch, c.generation); err != nil || lost != c.want {
				t.Errorf("superseded: %v (%v), want %v", lost, err, c.want)
			}
		})
	}
}

// TestSkips: a skip covers its range, ends included, of its own group,
// topic and partition only.
func TestSkips(t *testing.T) {
	env, conn := migrated(t)
	ctx := context.Background()
	skips := clickhouse.NewSkips(conn, env.Database, "group-a")
	if err := skips.Add(ctx, clickhouse.Skip{Topic: "usage", Partition: 2, From: 100, To: 119, Cause: "CRC"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		skips     *clickhouse.Skips
		topic     string
		partition int32
		offset    int64
		want      bool
	}{
		{"first offset", skips, "usage", 2, 100, true},
		{"last offset", skips, "usage", 2, 119, true},
		{"before", skips, "usage", 2, 99, false},
		{"after", skips, "usage", 2, 120, false},
		{"other partition", skips, "usage", 3, 100, false},
		{"other topic", skips, "license", 2, 100, false},
		{"other group", clickhouse.NewSkips(conn, env.Database, "group-b"), "usage", 2, 110, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, ok, err := c.skips.Covering(ctx, c.topic, c.partition, c.offset)
			if err != nil || ok != c.want || ok && (s.From != 100 || s.To != 119 || s.Cause != "CRC") {
				t.Errorf("Covering(%s/%d at %d) = %+v, %v, %v; want found %v", c.topic, c.partition, c.offset, s, ok, err, c.want)
			}
		})
	}
}
