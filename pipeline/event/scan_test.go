package event

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// The scanner must agree with the full parser on everything it accepts,
// and must accept nothing that is not JSON.
func checkScan(t *testing.T, data []byte) {
	t.Helper()
	var fresh, primed fields
	primed.scan(primer)
	okFresh, okPrimed := fresh.scan(data), primed.scan(data)
	again := fresh // its key order now predicts data's own
	okAgain := again.scan(data)
	if okFresh != okPrimed || okFresh != okAgain {
		t.Fatalf("%q: scan %v fresh, %v after another event, %v after itself", data, okFresh, okPrimed, okAgain)
	}
	if !okFresh {
		return
	}
	if !json.Valid(data) {
		t.Fatalf("scan accepted invalid JSON %q", data)
	}
	var d Decoder
	if r := d.parse(data); r != nil {
		t.Fatalf("scan accepted %q, the parser rejects it: %v", data, r)
	}
	for _, fast := range []*fields{&fresh, &primed, &again} {
		for k := range numFields {
			a, b := fast.get(k), d.f.get(k)
			if a.kind != b.kind || string(a.b) != string(b.b) {
				t.Fatalf("%q: %s: scan %v %q, parser %v %q", data, k, a.kind, a.b, b.kind, b.b)
			}
		}
	}
}

// primer has every known key, so that a scanner that read it predicts
// keys at every place.
var primer = []byte(`{"type":"subscription","v":1,"event_id":"e","occurred_at":"2026-10-02T14:31:07Z","tenant_id":"t",` +
	`"subscription_id":"s","sku":"X","partner_id":"p","quantity":2,"status":"active","trial":false,"user_id":"u",` +
	`"workload":"w","assigned":true}`)

func TestScanAgreesWithParser(t *testing.T) {
	for _, s := range []string{
		`{}`, ` { } `, `{"type":"usage","v":1}`, `{"v":-0}`, `{"v":01}`, `{"v":1.5}`, `{"v":1e3}`, `{"v":-}`,
		`{"type":"a","type":"b"}`, `{"a":true,"b":false,"c":null}`, `{"a":tru}`, `{"a":nul}`, `{"a":1}x`,
		`{"a":1,}`, `{,}`, `{"a" : "b" , "c":"d"}`, "{\"a\":\"\t\"}", `{"a":"\u00e9"}`, `{"a":"x\"y"}`,
		`{"a":[1,2]}`, `{"a":{"b":1}}`, `{"a":1`, `{"a"`, `{"a":`, `{"a":"b`, `[]`, `"x"`, `1`, ``, `{"type":"usage","v":1}}`,
		`{"a":"é"}`, "{\"a\":1}\n", `{"assigned":true}`,
	} {
		checkScan(t, []byte(s))
	}
	// every field name, cut short, run on and changed in each byte: the
	// scanner matches names by their first bytes
	for _, key := range []string{"type", "v", "event_id", "occurred_at", "tenant_id", "user_id", "workload", "sku",
		"assigned", "subscription_id", "partner_id", "quantity", "status", "trial"} {
		variants := []string{key + "x", key + `\"`, key + " ", "x" + key}
		for n := range len(key) {
			variants = append(variants, key[:n])
			for _, c := range []byte{'a', '"', '\\', 0x1f, 0xc3} {
				variants = append(variants, key[:n]+string(c)+key[n+1:])
			}
		}
		for _, k := range append(variants, key) {
			checkScan(t, []byte(`{"`+k+`":"x","`+key+`":1}`))
			checkScan(t, []byte(`{"`+key+`":1,"`+k+`":"x"}`))
			checkScan(t, []byte(`{"`+k+`"`))
			checkScan(t, []byte(`{"`+k))
		}
	}
	// random mutations of a real event
	base := []byte(`{"type":"usage","v":1,"event_id":"e-3","occurred_at":"2026-10-02T14:31:07.5Z","tenant_id":"t-42","user_id":"u-1","workload":"exchange","quantity":12,"trial":false,"x":null}`)
	alphabet := []byte(`{}[]":,.-+eE0123456789 tfnrul\\abc` + "\t\n\x00\x7f\xc3")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		b := append([]byte(nil), base...)
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b[i] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[i:]...)...)
			}
		}
		checkScan(t, b)
	}
}

func FuzzScan(f *testing.F) {
	f.Add([]byte(`{"type":"usage","v":1,"event_id":"e","occurred_at":"2026-10-02T14:31:07Z","tenant_id":"t","user_id":"u","workload":"teams"}`))
	f.Fuzz(checkScan)
}

func TestParseTimeAgreesWithTimeParse(t *testing.T) {
	cases := []string{"2026-10-02T14:31:07Z", "2026-10-02T14:31:07.5Z", "2026-10-02T14:31:07.123456789Z", "2026-10-02T14:31:07.1234567891Z",
		"2024-02-29T00:00:00Z", "2025-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T23:59:59Z", "2026-04-31T00:00:00Z",
		"2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-01T12:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z",
		"2026-01-01T23:59:60Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00,5Z", "2026-01-01t00:00:00Z", "2026-01-01T00:00:00z",
		"1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2261-12-31T23:59:59.999999999Z", "2026-01-01T00:00:00+02:00", "+026-01-01T00:00:00Z",
		"2026-1-01T00:00:00Z", "2026-01-01T00:00:0aZ", "2026-01-01 00:00:00Z"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		ts := time.Unix(rng.Int64N(int64(290*365*86400)), rng.Int64N(1e9)).UTC()
		cases = append(cases, ts.Format(time.RFC3339Nano), ts.Format(time.RFC3339))
	}
	cases = append(cases, "2105-12-31T23:59:59.999999999Z", "2105-12-31T23:00:00-01:00", "2106-01-01T00:00:00Z", "1970-01-01T00:30:00+01:00",
		"9999-12-31T23:59:59Z", "2611-03-01T00:00:00Z", "1441-01-01T00:00:00Z", "0000-01-01T00:00:00Z")
	var dates dateCache // each case after the one before, and alone
	for _, s := range cases {
		got, rej := dates.parseTime(s)
		ok := rej == nil
		if again, rejAgain := new(dateCache).parseTime(s); again != got || (rejAgain == nil) != ok {
			t.Fatalf("%q: %d %v after the case before, %d %v alone", s, got, rej, again, rejAgain)
		}
		// time.Parse, within the years the contract allows
		want, err := time.Parse(time.RFC3339Nano, s)
		inRange := err == nil && want.UTC().Year() >= MinYear && want.UTC().Year() <= MaxYear
		if ok != inRange || ok && got != want.UnixNano() {
			t.Errorf("%q: parseTime %d %v; time.Parse %v %v", s, got, rej, want, err)
		}
		if !ok && rej.Reason != BadValue {
			t.Errorf("%q: reason %s, want %s", s, rej.Reason, BadValue)
		}
	}
}

func TestScanStringAgreesBytewise(t *testing.T) {
	check := func(data []byte, from int) {
		t.Helper()
		if got, want := scanString(data, from), scanStringBytewise(data, from); got != want {
			t.Fatalf("scanString(%q, %d) = %d, want %d", data, from, got, want)
		}
	}
	// every byte value at every place of strings up to two words and a
	// bit long, alone and before a second stop byte (borrows)
	for n := 1; n <= 19; n++ {
		for at := range n {
			for c := range 256 {
				for _, second := range []byte{0, '"', '\\', 0x1f, 0x20, 'a', 0x80, 0xff} {
					data := bytes.Repeat([]byte{'a'}, n)
					data[at] = byte(c)
					if at+1 < n {
						data[at+1] = second
					}
					check(data, 0)
					check(data, min(at, 3))
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte("\"\\\x00\x1f\x20!#[]\x7f\x80\xc3\xffaz09")
	for range 200_000 {
		data := make([]byte, rng.IntN(40))
		for i := range data {
			data[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(data, rng.IntN(len(data)+1))
	}
}

func BenchmarkScanString(b *testing.B) {
	data := []byte(`sim-tenant-0042-00012345","occurred_at"`)
	b.SetBytes(int64(len(`sim-tenant-0042-00012345"`)))
	for b.Loop() {
		if scanString(data, 0) != 24 {
			b.Fatal("wrong end")
		}
	}
}

func BenchmarkParseTime(b *testing.B) {
	var dates dateCache
	for b.Loop() {
		if _, r := dates.parseTime("2026-10-02T14:31:07.5Z"); r != nil {
			b.Fatal("not parsed")
		}
	}
}
