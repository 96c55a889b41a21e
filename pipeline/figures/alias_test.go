package figures_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
)

// Decoded events' strings alias the message they were decoded from, whose
// space the runner reuses for a later fetch once its batch is applied (and
// the decoder's buffer, which the next Decode overwrites): the engine must
// copy what it keeps.
func TestEngineCopiesDecodedStrings(t *testing.T) {
	e := oneSourceEngine(t)
	var d event.Decoder
	var ev event.Event
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var inputs [][]byte
	for _, line := range []string{
		`{"type":"subscription","v":1,"event_id":"e1","occurred_at":"2026-10-01T00:00:00Z","tenant_id":"tenant-a","subscription_id":"s","sku":"NEW_SKU","partner_id":"p","quantity":3,"status":"active"}`,
		`{"type":"usage","v":1,"event_id":"e2","occurred_at":"2026-10-01T01:00:00Z","tenant_id":"tenant-a","user_id":"u","workload":"brand_new"}`,
		`{"type":"usage","v":1,"event_id":"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX","occurred_at":"2026-10-01T02:00:00Z","tenant_id":"tenant-b","user_id":"YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY","workload":"teams"}`,
	} {
		in := []byte(line)
		inputs = append(inputs, in)
		if r := d.Decode(in, now, &ev); r != nil {
			t.Fatal(r)
		}
		if _, r, err := e.Apply(0, &ev); err != nil || r != nil {
			t.Fatal(err, r)
		}
	}
	for _, in := range inputs {
		copy(in, bytes.Repeat([]byte("Z"), len(in)))
	}
	rows := e.Emit(1)
	if len(rows.Activity) != 2 {
		t.Fatalf("%d user_activity rows, want 2", len(rows.Activity))
	}
	for _, r := range rows.Activity {
		if !(r.TenantID == "tenant-a" && r.UserID == "u" && r.Workload == "brand_new") &&
			!(r.TenantID == "tenant-b" && r.UserID == strings.Repeat("Y", 51) && r.Workload == "teams") {
			t.Errorf("user_activity row %+v", r)
		}
	}
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
