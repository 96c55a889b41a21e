package fetch

import (
	"bytes"
	"cmp"
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
	txnBit      = 0x10 // attributes: written in a transaction
	codecBits   = 0x07 // attributes: the compression codec
)

// MaxUncompressed bounds a record batch's records once decompressed: a
// batch of a few hundred kilobytes can expand to gigabytes (a compression
// bomb). Publishers' batches hold a megabyte or so before compression.
const MaxUncompressed = 64 << 20

// ErrBatchTooLarge: a batch's records decompress to more than
// MaxUncompressed. It always will, so it is handed over as a Record with
// this error rather than retried.
var ErrBatchTooLarge = fmt.Errorf("its records decompress to more than %d MiB", MaxUncompressed>>20)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CorruptBatchError: a record batch as the broker stores it cannot be
// read (its CRC fails, it is cut or malformed, it does not decompress, or
// it is in a message format before v2). It will not read better on a
// retry against the same log; only an operator can decide to skip it.
type CorruptBatchError struct {
	// FirstOffset and LastOffset are the batch's offsets as its header
	// says; LastOffset is FirstOffset when the header cannot say.
	FirstOffset, LastOffset int64
	// Raw is the batch as the broker sent it (a copy), so that it can go
	// to the dead-letter topic as it is.
	Raw   []byte
	Cause string
}

func (e *CorruptBatchError) Error() string {
	return fmt.Sprintf("record batch at offsets %d-%d cannot be read: %s", e.FirstOffset, e.LastOffset, e.Cause)
}

// corrupt describes raw, a batch that cannot be read.
func corrupt(raw []byte, format string, args ...any) *CorruptBatchError {
	e := &CorruptBatchError{Raw: slices.Clone(raw), Cause: fmt.Sprintf(format, args...)}
	if len(raw) >= 8 {
		e.FirstOffset = int64(binary.BigEndian.Uint64(raw))
		e.LastOffset = e.FirstOffset
	}
	if len(raw) >= batchHeader {
		// lastOffsetDelta; the CRC covers it, so it may be wrong too
		if last := e.FirstOffset + int64(int32(binary.BigEndian.Uint32(raw[23:27]))); last > e.FirstOffset {
			e.LastOffset = last
		}
	}
	return e
}

// decoder turns a partition's record batches into records.
type decoder struct {
	arena []byte // the records of the fetch being read, uncompressed
	size  int    // the most a fetch's records took
	src   bytes.Reader
	batch kmsg.RecordBatch
	// aborted: producers whose records are being skipped, up to their
	// transaction's abort marker
	aborted map[int64]bool
}

// decode hands each record at or after from in batches to each, in order,
// and returns the offset after the last whole batch (from if none). A
// batch cut short at the end is the broker's size limit, not an error.
// The records' keys and values are put in arena, or in new space if it is
// too small; the space they are in is returned, also with an error (the
// records before it were handed over).
//
// Records of aborted transactions are skipped: aborts lists each aborted
// transaction's producer and first offset in this fetch (as the broker
// answers a read_committed fetch), and a producer's records are skipped
// from its transaction's first offset to its abort marker.
func (d *decoder) decode(batches []byte, from int64, arena []byte, aborts []kmsg.FetchResponseTopicPartitionAbortedTransaction, each func(Record)) (next int64, space []byte, err error) {
	d.arena = arena[:0]
	slices.SortFunc(aborts, func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
		return cmp.Compare(a.FirstOffset, b.FirstOffset)
	})
	clear(d.aborted)
	next, err = d.records(batches, from, aborts, each)
	d.size = max(d.size, len(d.arena))
	space, d.arena = d.arena, nil
	return next, space, err
}

// records is decode's loop over the batches, into d.arena.
func (d *decoder) records(batches []byte, from int64, aborts []kmsg.FetchResponseTopicPartitionAbortedTransaction, each func(Record)) (next int64, err error) {
	next = from
	for len(batches) >= batchHeader {
		n := lengthEnd + int(int32(binary.BigEndian.Uint32(batches[8:lengthEnd])))
		if n < batchHeader {
			return next, corrupt(batches[:min(len(batches), batchHeader)], "length %d is too short", n-lengthEnd)
		}
		if n > len(batches) {
			break
		}
		raw := batches[:n]
		batches = batches[n:]
		if err := d.batch.ReadFrom(raw); err != nil {
			return next, corrupt(raw, "%v", err)
		}
		b := &d.batch
		if b.Magic != 2 {
			return next, corrupt(raw, "message format v%d; seatflow reads v2 (Kafka 0.11 and later)", b.Magic)
		}
		if crc := crc32.Checksum(raw[crcEnd:], castagnoli); crc != uint32(b.CRC) {
			return next, corrupt(raw, "CRC %08x, computed %08x", uint32(b.CRC), crc)
		}
		last := b.FirstOffset + int64(b.LastOffsetDelta)
		for len(aborts) > 0 && aborts[0].FirstOffset <= last {
			if d.aborted == nil {
				d.aborted = map[int64]bool{}
			}
			d.aborted[aborts[0].ProducerID] = true
			aborts = aborts[1:]
		}
		if b.Attributes&controlBit != 0 {
			if d.aborted[b.ProducerID] && isAbortMarker(b) {
				delete(d.aborted, b.ProducerID)
			}
			next = max(next, last+1)
			continue
		}
		if last < from || b.Attributes&txnBit != 0 && d.aborted[b.ProducerID] {
			next = max(next, last+1)
			continue
		}
		if len(d.arena) >= MaxUncompressed/2 {
			break // the fetch holds enough: the next one reads on from here
		}
		recs, err := d.uncompressed(b)
		if errors.Is(err, ErrBatchTooLarge) {
			if cap(d.arena) > MaxUncompressed/2 { // not kept for the next fetch
				d.arena = append(make([]byte, 0, max(2*len(d.arena), 64<<10)), d.arena...)
			}
			start := len(d.arena)
			d.arena = append(d.arena, raw...)
			each(Record{Offset: b.FirstOffset, Value: d.arena[start:len(d.arena):len(d.arena)],
				Err: fmt.Errorf("record batch at offsets %d-%d: %w", b.FirstOffset, last, err)})
			next = max(next, last+1)
			continue
		}
		if err != nil {
			return next, corrupt(raw, "%v", err)
		}
		prev := b.FirstOffset - 1
		for i := range b.NumRecords {
			var r Record
			var ok bool
			if r, recs, ok = readRecord(recs); !ok {
				return next, corrupt(raw, "record %d of %d is cut short", i, b.NumRecords)
			}
			if r.Offset += b.FirstOffset; r.Offset <= prev || r.Offset > last {
				return next, corrupt(raw, "record %d has offset %d, after %d and up to %d", i, r.Offset, prev, last)
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
		if len(d.arena)-start > MaxUncompressed {
			d.arena = d.arena[:start]
			return nil, ErrBatchTooLarge
		}
		if errors.Is(err, io.EOF) {
			return d.arena[start:], nil
		}
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", codec, err)
		}
	}
}

// isAbortMarker reads a control batch's record: its key is a version and
// a type, 0 for an abort, 1 for a commit.
func isAbortMarker(b *kmsg.RecordBatch) bool {
	if b.Attributes&codecBits != 0 {
		return false // markers are never compressed
	}
	r, _, ok := readRecord(b.Records)
	return ok && len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:4]) == 0
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
