package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func setup(t *testing.T) (*testenv.ClickHouse, driver.Conn, context.Context) {
	t.Helper()
	ch := testenv.StartClickHouse(t)
	conn := ch.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ch, conn, ctx
}

func exec(t *testing.T, ctx context.Context, conn driver.Conn, query string, args ...any) {
	t.Helper()
	if err := conn.Exec(ctx, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// send makes one request of the HTTP interface, in the test's database.
func send(t *testing.T, ctx context.Context, ch *testenv.ClickHouse, method, query string, body io.Reader, params url.Values) (int, []byte, http.Header) {
	t.Helper()
	if params == nil {
		params = url.Values{}
	}
	params.Set("database", ch.Database)
	if query != "" {
		params.Set("query", query)
	}
	req, _ := http.NewRequestWithContext(ctx, method, ch.HTTPURL+"/?"+params.Encode(), body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func TestPingAndVersion(t *testing.T) {
	_, conn, ctx := setup(t)
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	v, err := conn.ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.Version.Major < 23 {
		t.Errorf("server version %v: want a current ClickHouse", v.Version)
	}
}

func TestBatchInsertManyRows(t *testing.T) {
	_, conn, ctx := setup(t)
	exec(t, ctx, conn, `CREATE TABLE events (
		tenant_id String, user_id UInt64, workload LowCardinality(String),
		day Date, at DateTime64(3, 'UTC'), n UInt32, score Float64, tag Nullable(String)
	) ENGINE = MergeTree ORDER BY (tenant_id, user_id)`)
	const rows = 150_000
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO events")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var wantN uint64
	for i := 0; i < rows; i++ {
		var tag *string
		if i%3 == 0 {
			s := fmt.Sprint("tag", i%7)
			tag = &s
		}
		at := base.Add(time.Duration(i) * time.Second)
		if err := batch.Append(fmt.Sprint("t-", i%100), uint64(i), []string{"exchange", "teams", "sharepoint"}[i%3],
			at, at, uint32(i%1000), float64(i)/2, tag); err != nil {
			t.Fatal(err)
		}
		wantN += uint64(i % 1000)
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}
	var count, sumN, nulls uint64
	var tenants uint64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(n), countIf(tag IS NULL), uniqExact(tenant_id) FROM events").Scan(&count, &sumN, &nulls, &tenants); err != nil {
		t.Fatal(err)
	}
	if count != rows || sumN != wantN || nulls != rows-rows/3 || tenants != 100 {
		t.Errorf("got count=%d sum=%d nulls=%d tenants=%d, want %d %d %d 100", count, sumN, nulls, tenants, rows, wantN, rows-rows/3)
	}
}

func TestReplacingMergeTreeFinal(t *testing.T) {
	_, conn, ctx := setup(t)
	exec(t, ctx, conn, `CREATE TABLE snap (k String, v UInt32, version UInt64)
		ENGINE = ReplacingMergeTree(version) ORDER BY k`)
	for _, ver := range []uint64{1, 3, 2} { // three inserts, three parts
		b, err := conn.PrepareBatch(ctx, "INSERT INTO snap")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "b"} {
			if err := b.Append(k, uint32(ver*10), ver); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	var raw uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM snap").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT k, v FROM snap FINAL ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var k string
		var v uint32
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%d", k, v))
	}
	if strings.Join(got, ",") != "a=30,b=30" {
		t.Errorf("FINAL gave %v, want the highest version of each key", got)
	}
	if raw < 2 || raw > 6 {
		t.Errorf("raw rows %d", raw)
	}
}

func TestAggregatingMergeTreeAndMaterializedView(t *testing.T) {
	_, conn, ctx := setup(t)
	exec(t, ctx, conn, `CREATE TABLE usage_raw (tenant_id String, user_id String, day Date) ENGINE = MergeTree ORDER BY tenant_id`)
	exec(t, ctx, conn, `CREATE TABLE usage_agg (tenant_id String, day Date,
		users AggregateFunction(uniqExact, String), events SimpleAggregateFunction(sum, UInt64))
		ENGINE = AggregatingMergeTree ORDER BY (tenant_id, day)`)
	exec(t, ctx, conn, `CREATE MATERIALIZED VIEW usage_mv TO usage_agg AS
		SELECT tenant_id, day, uniqExactState(user_id) AS users, toUInt64(count()) AS events
		FROM usage_raw GROUP BY tenant_id, day`)
	day := time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC)
	for round := 0; round < 2; round++ {
		b, err := conn.PrepareBatch(ctx, "INSERT INTO usage_raw")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1000; i++ {
			if err := b.Append(fmt.Sprint("t-", i%2), fmt.Sprint("u-", i%50+round*25), day); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.Query(ctx, "SELECT tenant_id, uniqExactMerge(users), sum(events) FROM usage_agg GROUP BY tenant_id ORDER BY tenant_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var tenant string
		var users, events uint64
		if err := rows.Scan(&tenant, &users, &events); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%d/%d", tenant, users, events))
	}
	// Per tenant and round 25 users; the second round's are all new.
	if strings.Join(got, " ") != "t-0:50/1000 t-1:50/1000" {
		t.Errorf("aggregates %v", got)
	}
}

// TestNullTableViewUnfoldsAndDeduplicates is how seatflow writes
// user_activity: a batch into a Null table, whose materialized view
// unfolds each row's day bitmask (arrayJoin over bitPositionsToArray) into
// a MergeTree. A retried insert with the same deduplication token adds
// nothing to the view's table; another token adds the rows again.
func TestNullTableViewUnfoldsAndDeduplicates(t *testing.T) {
	_, conn, ctx := setup(t)
	exec(t, ctx, conn, `CREATE TABLE days (k String, day Date) ENGINE = ReplacingMergeTree ORDER BY (k, day)
		SETTINGS non_replicated_deduplication_window = 100`)
	exec(t, ctx, conn, `CREATE TABLE days_input (k String, first Date, days UInt64) ENGINE = Null`)
	exec(t, ctx, conn, `CREATE MATERIALIZED VIEW days_unfold TO days AS
		SELECT k, first + arrayJoin(bitPositionsToArray(days)) AS day FROM days_input`)
	first := time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC)
	send := func(token string) {
		t.Helper()
		bctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
			"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}))
		b, err := conn.PrepareBatch(bctx, "INSERT INTO days_input")
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range []any{[]string{"a", "b"}, []time.Time{first, first}, []uint64{1 | 1<<2 | 1<<63, 1 << 1}} {
			if err := b.Column(i).Append(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	send("flush-1")
	send("flush-1") // a retry after a lost answer
	rows, err := conn.Query(ctx, "SELECT k, toString(day) FROM days ORDER BY k, day")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var k, day string
		if err := rows.Scan(&k, &day); err != nil {
			t.Fatal(err)
		}
		got = append(got, k+" "+day)
	}
	// bits 0, 2 and 63 from 30 October; bit 1 is the 31st
	if want := "a 2026-10-30 a 2026-11-01 a 2027-01-01 b 2026-10-31"; strings.Join(got, " ") != want {
		t.Errorf("unfolded %q, want %q", strings.Join(got, " "), want)
	}
	send("flush-2")
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM days").Scan(&n); err != nil || n != 8 {
		t.Errorf("after another token: %d rows (%v), want 8", n, err)
	}
}

func TestNullableLowCardinalityDateTime64RoundTrip(t *testing.T) {
	_, conn, ctx := setup(t)
	exec(t, ctx, conn, `CREATE TABLE types (id UInt8, pct Nullable(Float64), sku LowCardinality(String),
		at DateTime64(3, 'UTC'), m Map(String, UInt32)) ENGINE = MergeTree ORDER BY id`)
	at := time.Date(2026, 10, 2, 14, 31, 7, 123_000_000, time.UTC)
	pct := 87.5
	b, err := conn.PrepareBatch(ctx, "INSERT INTO types")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint8(1), &pct, "O365_E3", at, map[string]uint32{"teams": 3}); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint8(2), nil, "D365_SALES", at.Add(time.Millisecond), map[string]uint32{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT id, pct, sku, at, m FROM types ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var (
			id  uint8
			p   *float64
			sku string
			ts  time.Time
			m   map[string]uint32
		)
		if err := rows.Scan(&id, &p, &sku, &ts, &m); err != nil {
			t.Fatal(err)
		}
		ps := "NULL"
		if p != nil {
			ps = fmt.Sprint(*p)
		}
		got = append(got, fmt.Sprintf("%d %s %s %s %v", id, ps, sku, ts.UTC().Format(time.RFC3339Nano), m))
	}
	want := []string{
		"1 87.5 O365_E3 2026-10-02T14:31:07.123Z map[teams:3]",
		"2 NULL D365_SALES 2026-10-02T14:31:07.124Z map[]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDeduplicationTokenOnRetriedInsert(t *testing.T) {
	_, conn, ctx := setup(t)
	exec(t, ctx, conn, `CREATE TABLE dedup (k UInt32) ENGINE = MergeTree ORDER BY k
		SETTINGS non_replicated_deduplication_window = 100`)
	send := func(token string, first uint32) {
		t.Helper()
		bctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": token}))
		b, err := conn.PrepareBatch(bctx, "INSERT INTO dedup")
		if err != nil {
			t.Fatal(err)
		}
		for i := uint32(0); i < 10; i++ {
			if err := b.Append(first + i); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	send("flush-1", 0)
	send("flush-1", 0) // a retry after a lost answer
	send("flush-2", 0) // same rows, a different flush: kept
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM dedup").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 20 {
		t.Errorf("rows = %d, want 20 (the retried insert deduplicated)", n)
	}
}

// TestInsertSettings: settings sent with a batch insert apply to it (one
// that limits partitions per insert refuses a block spanning two), last
// for that insert only, and an unknown one is refused with its code.
func TestInsertSettings(t *testing.T) {
	_, conn, ctx := setup(t)
	exec(t, ctx, conn, `CREATE TABLE parts (d Date, k UInt32) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY k`)
	insert := func(settings clickhouse.Settings) error {
		t.Helper()
		b, err := conn.PrepareBatch(clickhouse.Context(ctx, clickhouse.WithSettings(settings)), "INSERT INTO parts")
		if err != nil {
			return err
		}
		for i, d := range []string{"2026-09-30", "2026-10-01"} {
			day, _ := time.Parse(time.DateOnly, d)
			if err := b.Append(day, uint32(i)); err != nil {
				t.Fatal(err)
			}
		}
		return b.Send()
	}
	var ex *clickhouse.Exception
	if err := insert(clickhouse.Settings{"max_partitions_per_insert_block": 1, "throw_on_max_partitions_per_insert_block": 1}); !errors.As(err, &ex) || ex.Code != 252 {
		t.Errorf("insert of two partitions with max_partitions_per_insert_block=1: %v, want code 252", err)
	}
	if err := insert(nil); err != nil {
		t.Errorf("the next insert, without settings: %v", err)
	}
	if err := insert(clickhouse.Settings{"no_such_setting_xyz": 1}); !errors.As(err, &ex) || ex.Code != 115 {
		t.Errorf("insert with an unknown setting: %v, want code 115", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM parts").Scan(&n); err != nil || n != 2 {
		t.Errorf("rows = %d (%v), want 2: only the insert without settings", n, err)
	}
}

func TestErrorHasCodeAndMessage(t *testing.T) {
	_, conn, ctx := setup(t)
	err := conn.Exec(ctx, "SELECT * FROM no_such_table")
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		t.Fatalf("error %v (%T) is not a *clickhouse.Exception", err, err)
	}
	if ex.Code != 60 || !strings.Contains(ex.Message, "no_such_table") {
		t.Errorf("exception code=%d message=%q, want code 60 naming the table", ex.Code, ex.Message)
	}
	err = conn.Exec(ctx, "SELEC 1")
	if !errors.As(err, &ex) || ex.Code != 62 {
		t.Errorf("syntax error: %v, want code 62", err)
	}
}

func TestSettingsAndParameters(t *testing.T) {
	_, conn, ctx := setup(t)
	sctx := clickhouse.Context(ctx,
		clickhouse.WithSettings(clickhouse.Settings{"max_threads": 1}),
		clickhouse.WithParameters(clickhouse.Parameters{"tenant": "t-'42"}))
	var threads, tenant string
	if err := conn.QueryRow(sctx, "SELECT toString(getSetting('max_threads')), {tenant:String}").Scan(&threads, &tenant); err != nil {
		t.Fatal(err)
	}
	if threads != "1" || tenant != "t-'42" {
		t.Errorf("got max_threads=%s tenant=%q", threads, tenant)
	}
	// A setting lasts for its own query only.
	if err := conn.QueryRow(ctx, "SELECT toString(getSetting('max_threads'))").Scan(&threads); err != nil {
		t.Fatal(err)
	}
	if threads == "1" {
		t.Errorf("max_threads=1 leaked into the next query")
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(db, "t_") {
		t.Errorf("current database %q, want the DSN's", db)
	}
}

func TestConcurrentClients(t *testing.T) {
	_, conn, ctx := setup(t)
	exec(t, ctx, conn, `CREATE TABLE conc (w UInt8, i UInt32) ENGINE = MergeTree ORDER BY (w, i)`)
	const writers, batches, per = 4, 10, 500
	var wg sync.WaitGroup
	errs := make(chan error, writers*2)
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go func(w int) {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				batch, err := conn.PrepareBatch(ctx, "INSERT INTO conc")
				if err != nil {
					errs <- err
					return
				}
				for i := 0; i < per; i++ {
					batch.Append(uint8(w), uint32(b*per+i))
				}
				if err := batch.Send(); err != nil {
					errs <- err
					return
				}
			}
		}(w)
		go func() {
			defer wg.Done()
			for i := 0; i < batches; i++ {
				var n uint64
				if err := conn.QueryRow(ctx, "SELECT count() FROM conc").Scan(&n); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n, distinct uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(w, i) FROM conc").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != writers*batches*per || distinct != n {
		t.Errorf("rows=%d distinct=%d, want %d", n, distinct, writers*batches*per)
	}
}

// TestCompressionMethods inserts and reads back with every compression the
// driver offers over the DSN's protocol.
func TestCompressionMethods(t *testing.T) {
	ch, _, ctx := setup(t)
	opts, err := clickhouse.ParseDSN(ch.DSN)
	if err != nil {
		t.Fatal(err)
	}
	methods := []clickhouse.CompressionMethod{clickhouse.CompressionLZ4, clickhouse.CompressionZSTD}
	if opts.Protocol == clickhouse.HTTP {
		methods = append(methods, clickhouse.CompressionGZIP, clickhouse.CompressionDeflate, clickhouse.CompressionBrotli)
	}
	for _, m := range methods {
		t.Run(m.String(), func(t *testing.T) {
			o := *opts
			o.Compression = &clickhouse.Compression{Method: m}
			conn, err := clickhouse.Open(&o)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			table := "comp_" + m.String()
			exec(t, ctx, conn, "CREATE TABLE "+table+" (s String, n UInt64) ENGINE = MergeTree ORDER BY n")
			b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20_000; i++ {
				b.Append(strings.Repeat("x", i%50), uint64(i))
			}
			if err := b.Send(); err != nil {
				t.Fatalf("insert: %v", err)
			}
			rows, err := conn.Query(ctx, "SELECT s, n FROM "+table+" ORDER BY n")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var i int
			for rows.Next() {
				var s string
				var n uint64
				if err := rows.Scan(&s, &n); err != nil {
					t.Fatal(err)
				}
				if n != uint64(i) || len(s) != i%50 {
					t.Fatalf("row %d: got %d/%d", i, n, len(s))
				}
				i++
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if i != 20_000 {
				t.Errorf("read %d rows", i)
			}
		})
	}
}

// TestPlainHTTP is what a person does with curl: formats, parameters and
// errors over the HTTP interface. It needs an HTTP endpoint.
func TestPlainHTTP(t *testing.T) {
	ch, conn, ctx := setup(t)
	if ch.HTTPURL == "" {
		t.Skip("the ClickHouse under test is reached over the native protocol; plain HTTP needs an HTTP DSN")
	}
	exec(t, ctx, conn, "CREATE TABLE p (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
	do := func(method, query, body string, params url.Values) (int, string, http.Header) {
		t.Helper()
		code, b, hdr := send(t, ctx, ch, method, query, strings.NewReader(body), params)
		return code, string(b), hdr
	}
	if code, body, _ := do("POST", "INSERT INTO p FORMAT CSV", "1,x\n2,y\n", nil); code != 200 {
		t.Fatalf("CSV insert: %d %s", code, body)
	}
	if code, body, _ := do("POST", "", "INSERT INTO p FORMAT JSONEachRow {\"a\":3,\"s\":\"z\"}", nil); code != 200 {
		t.Fatalf("JSONEachRow insert: %d %s", code, body)
	}
	cases := []struct{ query, want string }{
		{"SELECT a, s FROM p ORDER BY a", "1\tx\n2\ty\n3\tz\n"},
		{"SELECT a, s FROM p ORDER BY a FORMAT JSONEachRow", "{\"a\":1,\"s\":\"x\"}\n{\"a\":2,\"s\":\"y\"}\n{\"a\":3,\"s\":\"z\"}\n"},
		{"SELECT a, s FROM p ORDER BY a FORMAT CSV", "1,\"x\"\n2,\"y\"\n3,\"z\"\n"},
		{"SELECT a FROM p WHERE a = 1 FORMAT Pretty", "┃ a ┃"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			if code, body, _ := do("GET", c.query, "", nil); code != 200 || !strings.Contains(body, c.want) {
				t.Errorf("%d %q, want %q", code, body, c.want)
			}
		})
	}
	if code, body, _ := do("GET", "SELECT {n:UInt8} + 1", "", url.Values{"param_n": {"41"}}); code != 200 || body != "42\n" {
		t.Errorf("query parameter: %d %q", code, body)
	}
	code, body, hdr := do("GET", "SELECT * FROM no_such_table", "", nil)
	if code != 404 || hdr.Get("X-ClickHouse-Exception-Code") != "60" || !strings.HasPrefix(body, "Code: 60. DB::Exception:") {
		t.Errorf("error: %d %q code header %q", code, body, hdr.Get("X-ClickHouse-Exception-Code"))
	}
	resp, err := http.Get(ch.HTTPURL + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "Ok.\n" {
		t.Errorf("/ping: %q", b)
	}
}

// TestInsertAfterTheTableChanges: clickhouse-go reads a table's columns
// before each batch insert (over HTTP, with DESCRIBE TABLE), so an insert
// right after ALTER, DROP and CREATE, or into a table of the same name in
// another database, must see the table as it is now: the local ClickHouse
// keeps DESCRIBE answers and the session's database between requests.
func TestInsertAfterTheTableChanges(t *testing.T) {
	ch, conn, ctx := setup(t)
	columns := func(table string) string {
		t.Helper()
		rows, err := conn.Query(ctx, "DESCRIBE TABLE "+table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var name, typ, a, b, c, d, e string
			if err := rows.Scan(&name, &typ, &a, &b, &c, &d, &e); err != nil {
				t.Fatal(err)
			}
			names = append(names, name+" "+typ)
		}
		return strings.Join(names, ", ")
	}
	insert := func(table string, row ...any) {
		t.Helper()
		b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table)
		if err != nil {
			t.Fatalf("prepare insert into %s: %v", table, err)
		}
		if err := b.Append(row...); err != nil {
			t.Fatalf("append to %s: %v", table, err)
		}
		if err := b.Send(); err != nil {
			t.Fatalf("insert into %s: %v", table, err)
		}
	}
	exec(t, ctx, conn, `CREATE TABLE changing (a UInt32) ENGINE = MergeTree ORDER BY a`)
	insert("changing", uint32(1))
	exec(t, ctx, conn, `ALTER TABLE changing ADD COLUMN b String`)
	if got := columns("changing"); got != "a UInt32, b String" {
		t.Errorf("after ALTER: %s", got)
	}
	insert("changing", uint32(2), "two")
	exec(t, ctx, conn, `DROP TABLE changing`)
	exec(t, ctx, conn, `CREATE TABLE changing (x String, y Float64) ENGINE = MergeTree ORDER BY x`)
	insert("changing", "three", 3.0)
	if got := columns("changing"); got != "x String, y Float64" {
		t.Errorf("after DROP and CREATE: %s", got)
	}

	// the same name in a second database, reached by its own connection
	other := ch.Database + "_other"
	exec(t, ctx, conn, "CREATE DATABASE "+other)
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+other) })
	exec(t, ctx, conn, "CREATE TABLE "+other+".changing (n UInt8) ENGINE = MergeTree ORDER BY n")
	opts, err := clickhouse.ParseDSN(ch.DSN)
	if err != nil {
		t.Fatal(err)
	}
	opts.Auth.Database = other
	otherConn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer otherConn.Close()
	for range 2 { // alternate: each request on its own database
		b, err := otherConn.PrepareBatch(ctx, "INSERT INTO changing")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(uint8(4)); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatalf("insert into %s.changing: %v", other, err)
		}
		insert("changing", "five", 5.0)
	}
	var n, m uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM changing").Scan(&n); err != nil || n != 3 {
		t.Errorf("%s.changing has %d rows (%v), want 3", ch.Database, n, err)
	}
	if err := otherConn.QueryRow(ctx, "SELECT count() FROM changing").Scan(&m); err != nil || m != 2 {
		t.Errorf("%s.changing has %d rows (%v), want 2", other, m, err)
	}
}

// TestNativeInsertMatchesColumnsByName: a Native body's columns are
// matched to the insert's column list by name, not by place, and the
// table's other columns take their defaults.
func TestNativeInsertMatchesColumnsByName(t *testing.T) {
	ch, conn, ctx := setup(t)
	if ch.HTTPURL == "" {
		t.Skip("the ClickHouse under test is reached over the native protocol; a raw Native body needs an HTTP DSN")
	}
	exec(t, ctx, conn, "CREATE TABLE n (a UInt32, s String, d UInt8 DEFAULT 9) ENGINE = MergeTree ORDER BY a")
	do := func(method, query string, body []byte) []byte {
		t.Helper()
		code, b, _ := send(t, ctx, ch, method, query, bytes.NewReader(body), nil)
		if code != 200 {
			t.Fatalf("%s: %d %s", query, code, b)
		}
		return b
	}
	// the body names s before a: the server's own Native encoding
	body := do("GET", "SELECT toString(number) AS s, toUInt32(number * 10) AS a FROM numbers(3) FORMAT Native", nil)
	do("POST", "INSERT INTO n (a, s) FORMAT Native", body)
	if got, want := string(do("GET", "SELECT a, s, d FROM n ORDER BY a FORMAT CSV", nil)), "0,\"0\",9\n10,\"1\",9\n20,\"2\",9\n"; got != want {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestGuards: a GET runs reads only, and nothing reaches files, URLs or
// programs outside the server's own tables, as a server with default
// settings answers. Where the local ClickHouse differs: it also refuses a
// Host that does not name loopback (a web page's rebound name), which a
// server, with its users and passwords, need not.
func TestGuards(t *testing.T) {
	ch, conn, ctx := setup(t)
	if ch.HTTPURL == "" {
		t.Skip("the ClickHouse under test is reached over the native protocol; the guards are of the HTTP interface")
	}
	exec(t, ctx, conn, "CREATE TABLE g (a UInt32) ENGINE = MergeTree ORDER BY a")
	cases := []struct {
		name, method, query string
	}{
		{"a write over GET", "GET", "INSERT INTO g VALUES (1)"},
		{"DDL over GET", "GET", "CREATE DATABASE guard_test_db"},
		{"file() over GET", "GET", "SELECT * FROM file('/etc/passwd', 'LineAsString')"},
		{"file() with a comment before its parenthesis", "POST", "SELECT * FROM file/**/('/etc/passwd', 'LineAsString')"},
		{"writing a file", "POST", "INSERT INTO FUNCTION file('/tmp/seatflow-guard-test.csv', 'CSV', 'a UInt32') VALUES (1)"},
		{"INTO OUTFILE", "POST", "SELECT 1 INTO OUTFILE '/tmp/seatflow-guard-test.out'"},
		{"url()", "POST", "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')"},
		{"executable()", "POST", "SELECT * FROM executable('id', 'LineAsString')"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := send(t, ctx, ch, c.method, c.query, nil, nil)
			if code == 200 {
				t.Errorf("%s %s: answered %q", c.method, c.query, body)
			}
		})
	}
	if _, err := os.Stat("/tmp/seatflow-guard-test.csv"); err == nil {
		t.Error("a file was written through file()")
	}
	// what must still work
	for _, q := range []string{"SELECT count() FROM g", "SELECT 'file(' AS s", "SHOW TABLES", "WITH 1 AS x SELECT x"} {
		if code, body, _ := send(t, ctx, ch, "GET", q, nil, nil); code != 200 {
			t.Errorf("GET %s: %d %s", q, code, body)
		}
	}
	if code, body, _ := send(t, ctx, ch, "POST", "INSERT INTO g VALUES (1)", nil, nil); code != 200 {
		t.Errorf("POST insert: %d %s", code, body)
	}

	if ch.Kind != "local" {
		return
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", ch.HTTPURL+"/?query=SELECT+1", nil)
	req.Host = "attacker.example:8123"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a foreign Host got %d, want 403", resp.StatusCode)
	}
}
