package fetch

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request names where a fetch reads and how much it waits for.
type Request struct {
	Topic     string
	Partition int32
	Offset    int64
	// MaxBytes bounds the answer, though a broker sends a first record
	// batch larger than that whole.
	MaxBytes int32
	// MaxWait is how long the broker may wait for a first byte.
	MaxWait time.Duration
	// Arena is space for the records' keys and values: a Result's Arena
	// whose records are no longer used, or nil for new space.
	Arena []byte
}

// Record is one record of a fetch. Key and Value alias the fetch's arena:
// they stay as they are until the arena is given to another fetch.
type Record struct {
	Offset     int64
	Key, Value []byte
	// Err, when set, says this record stands for a whole record batch
	// that can never be read (see ErrBatchTooLarge): Offset is the
	// batch's first offset, Value the batch as the broker stores it.
	Err error
}

// Result is what a fetch found besides its records.
type Result struct {
	// HighWatermark is the offset after the partition's last record
	// that may be read: its last stable offset, since fetches read
	// committed records only (records of open transactions wait).
	HighWatermark int64
	// Next is the offset to fetch from next: after the last record batch
	// read, which may end with records that were not handed over (control
	// records of transactions) or none at all (compacted away).
	Next int64
	// Arena holds the records handed over: the request's, or new space
	// when that was too small. Give it to a later request once none of
	// them is used any more, so that reading does not allocate.
	Arena []byte
}

// Fetch reads the records at and after req.Offset that one fetch returns
// and hands them to each, in offset order. A partition error comes back as
// a kafka.Error, so errors.Is(err, kafka.OffsetOutOfRange) works. On an
// error in a record batch, the records before it were handed over and
// Result says where to go on after them.
func (c *Conn) Fetch(ctx context.Context, req Request, each func(Record)) (Result, error) {
	res, err := c.fetch(ctx, req, each)
	if err != nil {
		return res, fmt.Errorf("fetch %s/%d at %d: %w", req.Topic, req.Partition, req.Offset, err)
	}
	return res, nil
}

func (c *Conn) fetch(ctx context.Context, req Request, each func(Record)) (Result, error) {
	part := kmsg.NewFetchRequestTopicPartition()
	part.Partition, part.FetchOffset, part.PartitionMaxBytes = req.Partition, req.Offset, req.MaxBytes
	topic := kmsg.NewFetchRequestTopic()
	topic.Topic, topic.Partitions = req.Topic, []kmsg.FetchRequestTopicPartition{part}
	r := kmsg.NewPtrFetchRequest()
	r.Version = c.fetchV
	r.ReplicaID, r.MinBytes, r.MaxBytes = -1, 1, req.MaxBytes
	r.IsolationLevel = 1 // read_committed: aborted transactions never count
	r.MaxWaitMillis = int32(req.MaxWait / time.Millisecond)
	r.SessionID, r.SessionEpoch = 0, -1 // a full fetch, no fetch session
	r.Topics = []kmsg.FetchRequestTopic{topic}
	resp := kmsg.NewPtrFetchResponse()
	res := Result{Next: req.Offset, Arena: req.Arena}
	if err := c.roundTrip(ctx, r, resp, req.MaxWait+10*time.Second); err != nil {
		return res, err
	}
	if resp.ErrorCode != 0 {
		return res, kafka.Error(resp.ErrorCode)
	}
	p, err := onlyPartition(resp, req.Topic, req.Partition)
	if err != nil {
		return res, err
	}
	res.HighWatermark = p.HighWatermark
	if p.LastStableOffset >= 0 && p.LastStableOffset < p.HighWatermark {
		res.HighWatermark = p.LastStableOffset
	}
	if p.ErrorCode != 0 {
		return res, kafka.Error(p.ErrorCode)
	}
	res.Next, res.Arena, err = c.batches.decode(p.RecordBatches, req.Offset, req.Arena, p.AbortedTransactions, each)
	return res, err
}

func onlyPartition(resp *kmsg.FetchResponse, topic string, partition int32) (*kmsg.FetchResponseTopicPartition, error) {
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			if t.Topic == topic && t.Partitions[j].Partition == partition {
				return &t.Partitions[j], nil
			}
		}
	}
	return nil, fmt.Errorf("the broker answered without the partition")
}

// Offsets are a partition's first offset and the offset after its last
// record.
func (c *Conn) Offsets(ctx context.Context, topic string, partition int32) (first, end int64, err error) {
	if first, err = c.listOffset(ctx, topic, partition, -2); err == nil {
		end, err = c.listOffset(ctx, topic, partition, -1)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("offsets of %s/%d: %w", topic, partition, err)
	}
	return first, end, nil
}

// listOffset asks for the earliest (at -2) or the next (at -1) offset.
func (c *Conn) listOffset(ctx context.Context, topic string, partition int32, at int64) (int64, error) {
	part := kmsg.NewListOffsetsRequestTopicPartition()
	part.Partition, part.Timestamp = partition, at
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic, t.Partitions = topic, []kmsg.ListOffsetsRequestTopicPartition{part}
	r := kmsg.NewPtrListOffsetsRequest()
	r.Version, r.ReplicaID, r.Topics = c.listV, -1, []kmsg.ListOffsetsRequestTopic{t}
	resp := kmsg.NewPtrListOffsetsResponse()
	if err := c.roundTrip(ctx, r, resp, 10*time.Second); err != nil {
		return 0, err
	}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if rt.Topic == topic && p.Partition == partition {
				if p.ErrorCode != 0 {
					return 0, kafka.Error(p.ErrorCode)
				}
				return p.Offset, nil
			}
		}
	}
	return 0, fmt.Errorf("the broker answered without the partition")
}
