package event_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/simulate"
)

var now = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func TestDecodeValid(t *testing.T) {
	var d event.Decoder
	var ev event.Event
	cases := []struct {
		json string
		want func(event.Event) bool
	}{
		{`{"type":"subscription","v":1,"event_id":"e-1","occurred_at":"2026-10-01T09:00:00Z","tenant_id":"t-42","subscription_id":"s-1","sku":"O365_E3","partner_id":"p-7","quantity":25,"status":"active","trial":false,"extra":{"ignored":true}}`,
			func(e event.Event) bool {
				return e.Kind == event.Subscription && e.Quantity == 25 && e.Status == event.Active && e.PartnerID == "p-7" && e.SKU == "O365_E3"
			}},
		{`{"type":"subscription","v":1,"event_id":"e-1","occurred_at":"2026-10-01T09:00:00+02:00","tenant_id":"t","subscription_id":"s","sku":"X","quantity":0,"status":"grace"}`,
			func(e event.Event) bool {
				return e.PartnerID == "" && !e.Trial && e.Status == event.Grace && e.OccurredAt == time.Date(2026, 10, 1, 7, 0, 0, 0, time.UTC).UnixNano()
			}},
		{`{"type":"assignment","v":1,"event_id":"e-2","occurred_at":"2026-10-01T09:05:00Z","tenant_id":"t-42","user_id":"u-1","sku":"O365_E3","assigned":false}`,
			func(e event.Event) bool { return e.Kind == event.Assignment && !e.Assigned && e.UserID == "u-1" }},
		{`{"type":"usage","v":1,"event_id":"e-3","occurred_at":"2026-10-02T14:31:07.5Z","tenant_id":"t-42","user_id":"u-1","workload":"exchange"}`,
			func(e event.Event) bool {
				return e.Kind == event.Usage && e.Workload == "exchange" && e.OccurredAt%1e9 == 5e8
			}},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if r := d.Decode([]byte(c.json), now, &ev); r != nil {
				t.Errorf("%s: rejected: %v", c.json, r)
			} else if !c.want(ev) {
				t.Errorf("%s: decoded %+v", c.json, ev)
			}
		})
	}
}

func TestDecodeRejectsWithReason(t *testing.T) {
	cases := []struct {
		json   string
		reason event.Reason
	}{
		{`{"type":`, event.MalformedJSON},
		{`not json`, event.MalformedJSON},
		{`[1,2]`, event.NotAnObject},
		{`{"v":1}`, event.MissingField},
		{`{"type":"login","v":1}`, event.UnknownType},
		{`{"type":7,"v":1}`, event.BadValue},
		{`{"type":"usage","v":2,"event_id":"e"}`, event.UnknownVersion},
		{`{"type":"usage","v":"1"}`, event.BadValue},
		{`{"type":"usage","event_id":"e"}`, event.MissingField},
		{`{"type":"usage","v":1,"event_id":"e","occurred_at":"yesterday","tenant_id":"t","user_id":"u","workload":"teams"}`, event.BadValue},
		{`{"type":"usage","v":1,"event_id":"e","occurred_at":"2026-12-01T00:00:00Z","tenant_id":"t","user_id":"u","workload":"teams"}`, event.FutureTimestamp},
		{`{"type":"usage","v":1,"event_id":"","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","user_id":"u","workload":"teams"}`, event.MissingField},
		{`{"type":"usage","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","workload":"teams"}`, event.MissingField},
		{`{"type":"usage","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","user_id":5,"workload":"teams"}`, event.BadValue},
		{`{"type":"assignment","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","user_id":"u","sku":"S","assigned":"yes"}`, event.BadValue},
		{`{"type":"assignment","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","user_id":"u","sku":"S"}`, event.MissingField},
		{`{"type":"subscription","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","subscription_id":"s","sku":"S","quantity":-1,"status":"active"}`, event.BadValue},
		{`{"type":"subscription","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","subscription_id":"s","sku":"S","quantity":2.5,"status":"active"}`, event.BadValue},
		{`{"type":"subscription","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","subscription_id":"s","sku":"S","quantity":1,"status":"paused"}`, event.BadValue},
		{`{"type":"subscription","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","subscription_id":"s","sku":"S","status":"active"}`, event.MissingField},
		{`{"type":"usage","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","user_id":"` + strings.Repeat("u", 300) + `","workload":"teams"}`, event.BadValue},
	}
	var d event.Decoder
	var ev event.Event
	for i, c := range cases {
		t.Run(fmt.Sprint(i, " ", c.reason), func(t *testing.T) {
			r := d.Decode([]byte(c.json), now, &ev)
			if r == nil || r.Reason != c.reason {
				t.Errorf("%.120s: got %v, want %s", c.json, r, c.reason)
			}
			if r != nil && r.Detail == "" {
				t.Errorf("%.120s: no detail", c.json)
			}
		})
	}
}

// TestDecodedEventOutlivesNextDecode: the runner decodes a whole fetch
// before applying it, so an event's strings must not change when the same
// decoder decodes the next message, on either path (escapes take the full
// parser) — while the messages themselves stay untouched.
func TestDecodedEventOutlivesNextDecode(t *testing.T) {
	msgs := []string{
		`{"type":"usage","v":1,"event_id":"e-\u0031","occurred_at":"2026-10-02T14:31:07Z","tenant_id":"t-\"a\"","user_id":"u-\u00e9","workload":"teams"}`,
		`{"type":"usage","v":1,"event_id":"e-2","occurred_at":"2026-10-02T14:31:08Z","tenant_id":"t-b","user_id":"u-2","workload":"exchange"}`,
		`{"type":"usage","v":1,"event_id":"e-\u0033","occurred_at":"2026-10-02T14:31:09Z","tenant_id":"t-\"c\"","user_id":"u-\u00e8","workload":"yammer"}`,
	}
	var d event.Decoder
	evs := make([]event.Event, len(msgs))
	for i, m := range msgs {
		if r := d.Decode([]byte(m), now, &evs[i]); r != nil {
			t.Fatalf("%s: %v", m, r)
		}
	}
	want := [][3]string{{"e-1", `t-"a"`, "u-é"}, {"e-2", "t-b", "u-2"}, {"e-3", `t-"c"`, "u-è"}}
	for i, ev := range evs {
		if got := [3]string{ev.EventID, ev.TenantID, ev.UserID}; got != want[i] {
			t.Errorf("event %d after decoding the rest: %q, want %q", i, got, want[i])
		}
	}
}

// BenchmarkDecodeUsage measures decoding alone, on usage events of the
// shape the core benchmark and the simulator publish.
func BenchmarkDecodeUsage(b *testing.B) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	msgs := simulate.UsageMessages(4096, 100, 100_000, start)
	size := 0
	for _, m := range msgs {
		size += len(m)
	}
	now := start.Add(24 * time.Hour).UnixNano()
	var d event.Decoder
	var ev event.Event
	b.SetBytes(int64(size / len(msgs)))
	i := 0
	for b.Loop() {
		if r := d.Decode(msgs[i%len(msgs)], now, &ev); r != nil {
			b.Fatal(r)
		}
		i++
	}
}

// TestDecodeRefusesBeyondLimits holds both decoding paths to SPEC §2's
// limits: each case is sent as it is (the scanner's path) and with an
// escaped extra field, which sends it to the full parser.
func TestDecodeRefusesBeyondLimits(t *testing.T) {
	usage := func(field, value string) string {
		ev := map[string]string{"event_id": `"e"`, "occurred_at": `"2026-10-02T00:00:00Z"`, "tenant_id": `"t"`, "user_id": `"u"`, "workload": `"teams"`}
		ev[field] = value
		return `{"type":"usage","v":1,"event_id":` + ev["event_id"] + `,"occurred_at":` + ev["occurred_at"] + `,"tenant_id":` + ev["tenant_id"] +
			`,"user_id":` + ev["user_id"] + `,"workload":` + ev["workload"] + `}`
	}
	subscription := func(partner, quantity string) string {
		return `{"type":"subscription","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","subscription_id":"s","sku":"S","partner_id":` +
			partner + `,"quantity":` + quantity + `,"status":"active"}`
	}
	cases := []struct {
		name   string
		json   string
		reason event.Reason // "" for accepted
	}{
		{"year 9999", usage("occurred_at", `"9999-12-31T23:59:59Z"`), event.BadValue},
		{"year 2611", usage("occurred_at", `"2611-03-01T00:00:00Z"`), event.BadValue},
		{"year 1441", usage("occurred_at", `"1441-01-01T00:00:00Z"`), event.BadValue},
		{"before 1970 by offset", usage("occurred_at", `"1970-01-01T00:30:00+01:00"`), event.BadValue},
		{"1970 exactly", usage("occurred_at", `"1970-01-01T00:00:00Z"`), ""},
		{"2105 is in the future", usage("occurred_at", `"2105-12-31T23:59:59Z"`), event.FutureTimestamp},
		{"control character raw", usage("user_id", "\"u\x7f1\""), event.BadValue},
		{"control character escaped", usage("tenant_id", `"t\u0001"`), event.BadValue},
		{"C1 control character", usage("user_id", `"u\u0085"`), event.BadValue},
		{"newline escaped", usage("event_id", `"e\n"`), event.BadValue},
		{"invalid UTF-8", usage("user_id", "\"u\xff\xfe\""), event.BadValue},
		{"truncated UTF-8", usage("workload", "\"teams\xc3\""), event.BadValue},
		{"valid UTF-8", usage("user_id", `"utilisateur-é-名"`), ""},
		{"partner_id control character", subscription(`"p\u0007"`, "1"), event.BadValue},
		{"partner_id invalid UTF-8", subscription("\"p\xc0\"", "1"), event.BadValue},
		{"quantity at the limit", subscription(`"p"`, "10000000"), ""},
		{"quantity over the limit", subscription(`"p"`, "10000001"), event.BadValue},
		{"quantity int64 max", subscription(`"p"`, "9223372036854775807"), event.BadValue},
		{"quantity beyond int64", subscription(`"p"`, "92233720368547758070"), event.BadValue},
	}
	for _, c := range cases {
		for _, path := range []struct{ name, json string }{
			{"scanner", c.json},
			{"parser", strings.Replace(c.json, "{", `{"x":"\"",`, 1)},
		} {
			t.Run(c.name+"/"+path.name, func(t *testing.T) {
				var d event.Decoder
				var ev event.Event
				r := d.Decode([]byte(path.json), now, &ev)
				switch {
				case c.reason == "" && r != nil:
					t.Errorf("%q: rejected: %v", path.json, r)
				case c.reason != "" && (r == nil || r.Reason != c.reason):
					t.Errorf("%q: got %v, want %s", path.json, r, c.reason)
				}
			})
		}
	}
}
