package fetch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Unreadable reads the record batches of a partition from offset from and
// returns the run of batches there that cannot be read, up to offset to
// (both included), or up to the first batch's last offset when to is
// negative. It refuses a range that holds a record that reads fine: only
// what no reader can get past may be skipped, so every reader of the
// partition stops at from until the skip exists, and skips the same range
// after.
func (c *Conn) Unreadable(ctx context.Context, topic string, partition int32, from, to int64) ([]*CorruptBatchError, error) {
	var run []*CorruptBatchError
	for pos := from; to < 0 && len(run) == 0 || pos <= to; {
		var readable int64 = -1
		res, err := c.Fetch(ctx, Request{Topic: topic, Partition: partition, Offset: pos, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond},
			func(r Record) {
				if readable < 0 && r.Err == nil {
					readable = r.Offset
				}
			})
		var cb *CorruptBatchError
		switch {
		case readable >= 0 && (to < 0 || readable <= to):
			return nil, fmt.Errorf("%s/%d reads fine at offset %d: only record batches that cannot be read may be skipped", topic, partition, readable)
		case errors.As(err, &cb):
			run = append(run, cb)
			pos = max(pos, cb.LastOffset) + 1
		case err != nil:
			return nil, err
		case res.Next >= res.HighWatermark:
			return nil, fmt.Errorf("%s/%d ends at offset %d, before a record batch that cannot be read", topic, partition, res.HighWatermark)
		default:
			pos = max(pos, res.Next) // transaction markers, or records compacted away
		}
	}
	return run, nil
}
