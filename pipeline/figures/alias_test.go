package figures_test

import (
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
)

// Decoded events' strings alias the decoder's buffer, which the next
// Decode overwrites: the engine must copy what it keeps.
func TestEngineCopiesDecodedStrings(t *testing.T) {
	e := oneSourceEngine(t)
	var d event.Decoder
	var ev event.Event
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for _, line := range []string{
		`{"type":"subscription","v":1,"event_id":"e1","occurred_at":"2026-10-01T00:00:00Z","tenant_id":"tenant-a","subscription_id":"s","sku":"NEW_SKU","partner_id":"p","quantity":3,"status":"active"}`,
		`{"type":"usage","v":1,"event_id":"e2","occurred_at":"2026-10-01T01:00:00Z","tenant_id":"tenant-a","user_id":"u","workload":"brand_new"}`,
		`{"type":"usage","v":1,"event_id":"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX","occurred_at":"2026-10-01T02:00:00Z","tenant_id":"tenant-b","user_id":"YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY","workload":"teams"}`,
	} {
		if r := d.Decode([]byte(line), now, &ev); r != nil {
			t.Fatal(r)
		}
		if _, r, err := e.Apply(0, &ev); err != nil || r != nil {
			t.Fatal(err, r)
		}
	}
	rows := e.Flush(1)
	for _, r := range rows.Deployment {
		if r.SKU != "NEW_SKU" {
			t.Errorf("deployment row SKU %q", r.SKU)
		}
	}
	for _, r := range rows.Workload {
		if r.Workload != "brand_new" && r.Workload != "teams" {
			t.Errorf("workload row %q", r.Workload)
		}
	}
	for _, r := range rows.Subscriptions {
		if r.SKU != "NEW_SKU" || r.PartnerID != "p" || r.SubscriptionID != "s" || r.TenantID != "tenant-a" {
			t.Errorf("subscription row %+v", r)
		}
	}
}
