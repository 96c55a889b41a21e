package fetch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record batch layout (Kafka's message format v2): a 61-byte header, then
// the records. Length counts what follows its own field; the CRC covers
// what follows the CRC.
const (
	batchHeader = 61
	lengthEnd   = 12 // after baseOffset and length
	magicAt     = 16
	crcEnd      = 21   // after the CRC, which starts at 17
	controlBit  = 0x20 // attributes: a transaction marker, not data
	codecBits   = 0x07 // attributes: the compression codec
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// decoder turns a partition's record batches into records.
type decoder struct {
	arena []byte // the records of the fetch being read, uncompressed
	size  int    // the most a fetch's records took
	src   bytes.Reader
	batch kmsg.RecordBatch
}

// decode hands each record at or after from in batches to each, in order,
// and returns the offset after the last whole batch (from if none). A
// batch cut short at the end is the broker's size limit, not an error.
// The records' keys and values are put in arena, or in new space if it is
// too small; the space they are in is returned, also with an error (the
// records before it were handed over).
func (d *decoder) decode(batches []byte, from int64, arena []byte, each func(Record)) (next int64, space []byte, err error) {
	d.arena = arena[:0]
	next, err = d.records(batches, from, each)
	d.size = max(d.size, len(d.arena))
	space, d.arena = d.arena, nil
	return next, space, err
}

// records is decode's loop over the batches, into d.arena.
func (d *decoder) records(batches []byte, from int64, each func(Record)) (next int64, err error) {
	next = from
	for len(batches) >= batchHeader {
		n := lengthEnd + int(int32(binary.BigEndian.Uint32(batches[8:lengthEnd])))
		if n < batchHeader {
			return next, fmt.Errorf("record batch at offset %d: length %d is too short", int64(binary.BigEndian.Uint64(batches)), n-lengthEnd)
		}
		if n > len(batches) {
			break
		}
		raw := batches[:n]
		batches = batches[n:]
		if err := d.batch.ReadFrom(raw); err != nil {
			return next, fmt.Errorf("record batch at offset %d: %w", int64(binary.BigEndian.Uint64(raw)), err)
		}
		b := &d.batch
		if b.Magic != 2 {
			return next, fmt.Errorf("record batch at offset %d: message format v%d; seatflow reads v2 (Kafka 0.11 and later)", b.FirstOffset, b.Magic)
		}
		if crc := crc32.Checksum(raw[crcEnd:], castagnoli); crc != uint32(b.CRC) {
			return next, fmt.Errorf("record batch at offset %d: corrupt (CRC %08x, computed %08x)", b.FirstOffset, uint32(b.CRC), crc)
		}
		last := b.FirstOffset + int64(b.LastOffsetDelta)
		if last < from || b.Attributes&controlBit != 0 {
			next = max(next, last+1)
			continue
		}
		recs, err := d.uncompressed(b)
		if err != nil {
			return next, fmt.Errorf("record batch at offset %d: %w", b.FirstOffset, err)
		}
		prev := b.FirstOffset - 1
		for i := range b.NumRecords {
			var r Record
			var ok bool
			if r, recs, ok = readRecord(recs); !ok {
				return next, fmt.Errorf("record batch at offset %d: record %d of %d is cut short", b.FirstOffset, i, b.NumRecords)
			}
			if r.Offset += b.FirstOffset; r.Offset <= prev || r.Offset > last {
				return next, fmt.Errorf("record batch at offset %d: record %d has offset %d, after %d and up to %d", b.FirstOffset, i, r.Offset, prev, last)
			}
			if prev = r.Offset; r.Offset >= from {
				each(r)
			}
		}
		next = max(next, last+1)
	}
	return next, nil
}

// uncompressed puts b's records into the arena, decompressed.
func (d *decoder) uncompressed(b *kmsg.RecordBatch) ([]byte, error) {
	if d.arena == nil {
		d.arena = make([]byte, 0, max(d.size, 64<<10))
	}
	start := len(d.arena)
	codec := compress.Compression(b.Attributes & codecBits)
	if codec == compress.None {
		d.arena = append(d.arena, b.Records...)
		return d.arena[start:], nil
	}
	c := codec.Codec()
	if c == nil {
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	d.src.Reset(b.Records)
	r := c.NewReader(&d.src)
	defer r.Close()
	for {
		if len(d.arena) == cap(d.arena) {
			// Records already handed over keep the old array: the
			// caller reuses only the space returned.
			d.arena = slices.Grow(d.arena, cap(d.arena)/2)
		}
		n, err := r.Read(d.arena[len(d.arena):cap(d.arena)])
		d.arena = d.arena[:len(d.arena)+n]
		if errors.Is(err, io.EOF) {
			return d.arena[start:], nil
		}
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", codec, err)
		}
	}
}

// readRecord reads the first of recs (Kafka's record format v2): its
// length, attributes, timestamp delta, offset delta (in r.Offset), key,
// value and headers. Headers are skipped: the length says where the next
// record starts. kmsg's Record.ReadFrom reads the same in 2-4 times the
// time, and its headers in new slices.
func readRecord(recs []byte) (r Record, rest []byte, ok bool) {
	size, n := binary.Varint(recs)
	if n <= 0 || size < 1 || size > int64(len(recs)-n) {
		return r, nil, false
	}
	b, rest := recs[n+1:n+int(size)], recs[n+int(size):] // after attributes
	if _, n = binary.Varint(b); n <= 0 {                 // timestamp delta
		return r, nil, false
	}
	b = b[n:]
	if r.Offset, n = binary.Varint(b); n <= 0 {
		return r, nil, false
	}
	b = b[n:]
	if r.Key, b, ok = readBytes(b); ok {
		r.Value, _, ok = readBytes(b)
	}
	return r, rest, ok
}

// readBytes reads a length-prefixed byte string; length -1 is null. Its
// capacity ends with it, so that an append cannot write over what follows.
func readBytes(b []byte) (s, rest []byte, ok bool) {
	size, n := binary.Varint(b)
	switch {
	case n <= 0 || size < -1 || size > int64(len(b)-n):
		return nil, nil, false
	case size == -1:
		return nil, b[n:], true
	}
	end := n + int(size)
	return b[n:end:end], b[end:], true
}
