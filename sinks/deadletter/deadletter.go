// Package deadletter writes rejected events to the dead-letter topic: the
// original key and bytes, and headers saying why and where from.
package deadletter

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Header names on dead-letter messages.
const (
	HeaderReason    = "seatflow.reason"
	HeaderDetail    = "seatflow.detail"
	HeaderTopic     = "seatflow.source.topic"
	HeaderPartition = "seatflow.source.partition"
	HeaderOffset    = "seatflow.source.offset"
)

// Entry is one rejected message.
type Entry struct {
	Source         kafka.Message
	Reason, Detail string
}

// Writer sends entries to the dead-letter topic.
type Writer struct {
	w *kafka.Writer
}

// NewWriter writes to topic on brokers.
func NewWriter(brokers []string, topic string) *Writer {
	return &Writer{w: &kafka.Writer{
		Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 10000,
	}}
}

// Write sends the entries and waits until the broker has them.
func (d *Writer) Write(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(entries))
	for i, e := range entries {
		msgs[i] = kafka.Message{
			Key: e.Source.Key, Value: e.Source.Value,
			Headers: []kafka.Header{
				{Key: HeaderReason, Value: []byte(e.Reason)},
				{Key: HeaderDetail, Value: []byte(e.Detail)},
				{Key: HeaderTopic, Value: []byte(e.Source.Topic)},
				{Key: HeaderPartition, Value: []byte(strconv.Itoa(e.Source.Partition))},
				{Key: HeaderOffset, Value: []byte(strconv.FormatInt(e.Source.Offset, 10))},
			},
		}
	}
	if err := d.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d dead letters: %w", len(msgs), err)
	}
	return nil
}

// Close flushes and closes the writer.
func (d *Writer) Close() error { return d.w.Close() }
