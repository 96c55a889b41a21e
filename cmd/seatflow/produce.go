package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/event"
)

func produceCommand(app *kingpin.Application) (string, func(context.Context) error) {
	cmd := app.Command("produce", "Validate a JSONL file of events and publish it: license events and usage events to their topics, keyed by tenant_id with Kafka's default partitioner.")
	file := cmd.Arg("file", "JSONL file; - for standard input.").Required().String()
	k := addKafkaFlags(cmd)
	return cmd.FullCommand(), func(ctx context.Context) error {
		// Validate the whole file first: publishing half of it is worse
		// than publishing none.
		bad, total, err := eachLine(*file, func(int, []byte, *event.Event) error { return nil }, os.Stderr)
		if err != nil {
			return err
		}
		if bad > 0 {
			return fmt.Errorf("%d of %d events are invalid; nothing was published (fix them, or check with seatflow validate)", bad, total)
		}
		p, err := newPublisher(k)
		if err != nil {
			return err
		}
		defer p.close()
		start := time.Now()
		if _, _, err := eachLine(*file, func(_ int, raw []byte, ev *event.Event) error {
			return p.publish(ctx, ev, append([]byte(nil), raw...))
		}, os.Stderr); err != nil {
			return err
		}
		if err := p.close(); err != nil {
			return err
		}
		fmt.Printf("published %d events in %s\n", total, time.Since(start).Round(time.Millisecond))
		return nil
	}
}

// publisher writes events to their topics in batches.
type publisher struct {
	license, usage *kafka.Writer
	buf            map[*kafka.Writer][]kafka.Message
}

func newPublisher(k *kafkaFlags) (*publisher, error) {
	sec, err := k.security()
	if err != nil {
		return nil, err
	}
	w := func(topic string) *kafka.Writer {
		return &kafka.Writer{Addr: kafka.TCP(k.brokerList()...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, Transport: &kafka.Transport{TLS: sec.TLS, SASL: sec.SASL},
			RequiredAcks: kafka.RequireAll, BatchSize: 10000, BatchBytes: 16 << 20, BatchTimeout: 5 * time.Millisecond, Compression: kafka.Lz4}
	}
	return &publisher{license: w(k.licenseTopic), usage: w(k.usageTopic), buf: map[*kafka.Writer][]kafka.Message{}}, nil
}

func (p *publisher) publish(ctx context.Context, ev *event.Event, value []byte) error {
	w := p.license
	if ev.Kind == event.Usage {
		w = p.usage
	}
	p.buf[w] = append(p.buf[w], kafka.Message{Key: []byte(ev.TenantID), Value: value})
	if len(p.buf[w]) >= 50000 {
		return p.flush(ctx, w)
	}
	return nil
}

func (p *publisher) flush(ctx context.Context, w *kafka.Writer) error {
	if msgs := p.buf[w]; len(msgs) > 0 {
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("publish to %s: %w", w.Topic, err)
		}
	}
	p.buf[w] = p.buf[w][:0]
	return nil
}

func (p *publisher) close() error {
	var first error
	for _, w := range []*kafka.Writer{p.license, p.usage} {
		if err := p.flush(context.Background(), w); err != nil && first == nil {
			first = err
		}
		w.Close()
	}
	return first
}
