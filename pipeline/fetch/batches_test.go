package fetch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/seatflow/seatflow/pipeline/simulate"
)

var codecs = []compress.Compression{compress.None, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd}

// encode is a record batch starting at offset first, written by kafka-go's
// producer code: an encoder independent of the decoder under test.
func encode(t testing.TB, first int64, attrs protocol.Attributes, recs ...Record) []byte {
	t.Helper()
	prs := make([]protocol.Record, len(recs))
	for i, r := range recs {
		prs[i] = protocol.Record{Time: time.UnixMilli(1_700_000_000_000 + int64(i)), Key: protocol.NewBytes(r.Key), Value: protocol.NewBytes(r.Value)}
		if i%3 == 2 {
			prs[i].Headers = []protocol.Header{{Key: "h", Value: []byte("header value")}}
		}
	}
	var buf bytes.Buffer
	rs := protocol.RecordSet{Version: 2, Attributes: attrs, Records: protocol.NewRecordReader(prs...)}
	if _, err := rs.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()[4:]                         // after the record set's size
	binary.BigEndian.PutUint64(b, uint64(first)) // base offset: outside the CRC
	return b
}

// records are n records with keys, values, a null key and an empty value.
func records(first int64, n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		off := first + int64(i)
		recs[i] = Record{Offset: off, Key: fmt.Appendf(nil, "tenant-%d", off%7), Value: fmt.Appendf(nil, `{"n":%d,"pad":%q}`, off, strings.Repeat("x", int(off%50)))}
		switch i % 5 {
		case 1:
			recs[i].Key = nil
		case 3:
			recs[i].Value = []byte{}
		}
	}
	return recs
}

func decodeAll(t testing.TB, d *decoder, batches []byte, from int64) ([]Record, int64, error) {
	t.Helper()
	var got []Record
	next, _, err := d.decode(batches, from, nil, nil, func(r Record) { got = append(got, r) })
	return got, next, err
}

func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("record %d: got {%d %q %q}, want {%d %q %q}", i, g.Offset, g.Key, g.Value, w.Offset, w.Key, w.Value)
		}
	}
}

func TestDecodeEveryCodec(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			a, b := records(100, 40), records(140, 25)
			batches := append(encode(t, 100, protocol.Attributes(codec), a...), encode(t, 140, protocol.Attributes(codec), b...)...)
			all := append(slices.Clone(a), b...)
			var d decoder
			for _, from := range []int64{0, 100, 117, 140, 150, 164, 165} {
				got, next, err := decodeAll(t, &d, batches, from)
				if err != nil {
					t.Fatalf("from %d: %v", from, err)
				}
				sameRecords(t, got, all[max(0, from-100):])
				if next != 165 {
					t.Errorf("from %d: next %d, want 165", from, next)
				}
			}
		})
	}
}

// A broker cuts the last batch short at its size limit: the records before
// it are read, and the next fetch starts at that batch.
func TestDecodeCutShort(t *testing.T) {
	for _, codec := range []compress.Compression{compress.None, compress.Lz4} {
		a, b := records(0, 30), records(30, 30)
		first := encode(t, 0, protocol.Attributes(codec), a...)
		batches := append(slices.Clone(first), encode(t, 30, protocol.Attributes(codec), b...)...)
		var d decoder
		for cut := range len(batches) {
			got, next, err := decodeAll(t, &d, batches[:cut], 0)
			if err != nil {
				t.Fatalf("%s, cut at %d: %v", codec, cut, err)
			}
			want, wantNext := []Record(nil), int64(0)
			if cut >= len(first) {
				want, wantNext = a, 30
			}
			sameRecords(t, got, want)
			if next != wantNext {
				t.Fatalf("%s, cut at %d: next %d, want %d", codec, cut, next, wantNext)
			}
		}
	}
}

// A transaction's marker is a control batch: no records, but the next
// fetch starts after it.
func TestDecodeSkipsControlBatches(t *testing.T) {
	a := records(0, 5)
	marker := encode(t, 5, protocol.Control|protocol.Transactional, Record{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}})
	batches := append(encode(t, 0, 0, a...), marker...)
	var d decoder
	got, next, err := decodeAll(t, &d, batches, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, a)
	if next != 6 {
		t.Errorf("next %d, want 6 (after the marker)", next)
	}
}

// Every changed byte after the CRC is caught, before any of the batch's
// records is handed over, and named with the batch's offsets and bytes;
// the batch before it is read.
func TestDecodeCorruptBatch(t *testing.T) {
	for _, codec := range []compress.Compression{compress.None, compress.Lz4} {
		t.Run(codec.String(), func(t *testing.T) {
			before := encode(t, 0, protocol.Attributes(codec), records(0, 10)...)
			good := encode(t, 10, protocol.Attributes(codec), records(10, 10)...)
			var d decoder
			for i := crcEnd; i < len(good); i++ {
				bad := slices.Clone(good)
				bad[i] ^= 0x10
				got, _, err := decodeAll(t, &d, slices.Concat(before, bad), 0)
				var cb *CorruptBatchError
				if !errors.As(err, &cb) || len(got) != 10 {
					t.Fatalf("byte %d changed: %d records, err %v; want the first batch's 10 and a corrupt-batch error", i, len(got), err)
				}
				lastDelta := i >= 23 && i < 27 // the header's last offset, itself under the CRC
				if cb.FirstOffset != 10 || cb.LastOffset != 19 && !lastDelta || !bytes.Equal(cb.Raw, bad) {
					t.Fatalf("byte %d changed: error names offsets %d-%d and %d bytes; want 10-19 and the batch's %d", i, cb.FirstOffset, cb.LastOffset, len(cb.Raw), len(bad))
				}
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := encode(t, 0, 0, records(0, 3)...)
	oldFormat := slices.Clone(good)
	oldFormat[magicAt] = 1
	short := slices.Clone(good)
	binary.BigEndian.PutUint32(short[8:], 10)
	for _, c := range []struct {
		name    string
		batches []byte
		want    string
	}{
		{"message format v1", oldFormat, "message format v1"},
		{"length too short", short, "too short"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var d decoder
			_, _, err := decodeAll(t, &d, c.batches, 0)
			var cb *CorruptBatchError
			if !errors.As(err, &cb) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want a corrupt-batch error saying %q", err, c.want)
			}
		})
	}
}

// Records stay as they were through later fetches into other space, and
// a fetch given their space back reuses it.
func TestDecodeArena(t *testing.T) {
	for _, codec := range []compress.Compression{compress.None, compress.Lz4} {
		var d decoder
		small, large := encode(t, 0, protocol.Attributes(codec), records(0, 50)...), encode(t, 50, protocol.Attributes(codec), records(50, 500)...)
		var kept []Record
		_, _, err := d.decode(small, 0, nil, nil, func(r Record) { kept = append(kept, r) })
		if err != nil {
			t.Fatal(err)
		}
		want := make([]Record, len(kept))
		for i, r := range kept {
			want[i] = Record{Offset: r.Offset, Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)}
		}
		var other []byte
		for range 3 {
			if _, other, err = d.decode(large, 50, nil, nil, func(Record) {}); err != nil {
				t.Fatal(err)
			}
		}
		sameRecords(t, kept, want)
		_, again, err := d.decode(large, 50, other, nil, func(Record) {})
		if err != nil {
			t.Fatal(err)
		}
		if unsafe.SliceData(again) != unsafe.SliceData(other) {
			t.Errorf("%s: a fetch given space enough for its records did not use it", codec)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(f, 0, protocol.Attributes(compress.Lz4), records(0, 3)...), int64(1))
	f.Add(encode(f, 7, 0, records(7, 2)...), int64(0))
	f.Fuzz(func(t *testing.T, batches []byte, from int64) {
		var d decoder
		last := int64(-1)
		next, _, _ := d.decode(batches, from, nil, nil, func(r Record) {
			if r.Offset < from || r.Offset <= last {
				t.Fatalf("record at %d handed over after %d, from %d", r.Offset, last, from)
			}
			last = r.Offset
		})
		if next < from {
			t.Fatalf("next %d before from %d", next, from)
		}
	})
}

// BenchmarkDecode reads fetches of 5000 usage events in lz4-compressed
// batches of 1000, as `seatflow simulate` publishes them.
func BenchmarkDecode(b *testing.B) {
	msgs := simulate.UsageMessages(5000, 100, 100_000, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC))
	var batches []byte
	for i := 0; i < len(msgs); i += 1000 {
		recs := make([]Record, 1000)
		for j := range recs {
			recs[j] = Record{Key: fmt.Appendf(nil, "tenant-%d", j%100), Value: msgs[i+j]}
		}
		batches = append(batches, encode(b, int64(i), protocol.Attributes(compress.Lz4), recs...)...)
	}
	var d decoder
	b.SetBytes(int64(len(batches)))
	b.ReportAllocs()
	n := 0
	var arena []byte
	for b.Loop() {
		var err error
		if _, arena, err = d.decode(batches, 0, arena, nil, func(Record) { n++ }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
}

// TestCompressionBomb: a batch whose records decompress to more than
// MaxUncompressed is handed over as one record carrying ErrBatchTooLarge
// and the batch as stored, and the batches around it are read as usual.
func TestCompressionBomb(t *testing.T) {
	for _, codec := range []compress.Compression{compress.Gzip, compress.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			before, after := records(0, 3), records(5, 3)
			bomb := encode(t, 3, protocol.Attributes(codec),
				Record{Key: []byte("k"), Value: make([]byte, MaxUncompressed/2+1)}, Record{Key: []byte("k"), Value: make([]byte, MaxUncompressed/2+1)})
			if len(bomb) > 1<<20 {
				t.Fatalf("the bomb takes %d bytes compressed; want less than 1 MiB", len(bomb))
			}
			batches := slices.Concat(encode(t, 0, 0, before...), bomb, encode(t, 5, protocol.Attributes(codec), after...))
			got, next, err := decodeAll(t, new(decoder), batches, 0)
			if err != nil {
				t.Fatal(err)
			}
			if next != 8 || len(got) != 7 {
				t.Fatalf("next %d, %d records; want 8 and 7", next, len(got))
			}
			bad := got[3]
			if !errors.Is(bad.Err, ErrBatchTooLarge) || bad.Offset != 3 || !bytes.Equal(bad.Value, bomb) {
				t.Errorf("the bomb came as {offset %d, %d bytes, err %v}; want offset 3, the batch, ErrBatchTooLarge", bad.Offset, len(bad.Value), bad.Err)
			}
			sameRecords(t, slices.Concat(got[:3], got[4:]), slices.Concat(before, after))
		})
	}
}
