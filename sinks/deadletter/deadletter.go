// Package deadletter writes rejected events to the dead-letter topic: the
// original key and bytes, and headers saying why and where from. No event,
// however large, stops the pipeline here: a dead letter too large for the
// topic keeps a prefix of its value (with the original's size and
// SHA-256), and one the topic still refuses is counted and logged.
package deadletter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
)

// Header names on dead-letter messages.
const (
	HeaderReason    = "seatflow.reason"
	HeaderDetail    = "seatflow.detail"
	HeaderTopic     = "seatflow.source.topic"
	HeaderPartition = "seatflow.source.partition"
	HeaderOffset    = "seatflow.source.offset"
	// On a dead letter cut to fit the topic: the original value's size in
	// bytes and its SHA-256 (hex), to find the whole event at its source.
	HeaderOriginalSize   = "seatflow.original_size"
	HeaderOriginalSHA256 = "seatflow.original_sha256"
)

const (
	// MaxDetail bounds the detail header: a detail may quote the input.
	MaxDetail = 1024
	// maxCutKey bounds the key of a dead letter that must be cut.
	maxCutKey = 1024
	// DefaultMaxMessageBytes is the topic limit assumed when the broker
	// does not say (Kafka's default is 1048588).
	DefaultMaxMessageBytes = 1_000_000
	// batchSlack is what a record batch adds around its records (61
	// bytes) and then some: kafka-go's size estimate and a broker's
	// measure differ by a few bytes a record.
	batchSlack = 512
	// protocolAttempts bounds the tries of a message the broker refuses
	// with a Kafka error; network errors are retried until ctx ends (the
	// broker is away: nothing is lost by waiting).
	protocolAttempts = 5
)

// Entry is one rejected message.
type Entry struct {
	Source         kafka.Message
	Reason, Detail string
}

// Config configures a Writer.
type Config struct {
	Brokers []string
	Topic   string
	// Transport carries the connections (TLS, SASL); nil: kafka-go's default.
	Transport kafka.RoundTripper
	Log       *slog.Logger
	// OnRetry hears of each failed attempt that will be tried again.
	OnRetry func(error)
}

// Writer sends entries to the dead-letter topic.
type Writer struct {
	cfg      Config
	w        *kafka.Writer
	maxBytes int64 // what one record (and one batch) may take
}

// Report says what a Write did with its entries.
type Report struct {
	Written   int // whole
	Truncated int // a prefix of the value kept: too large for the topic
	Failed    int // not written: the topic refused even the prefix (logged)
}

// Open checks that the topic exists, learns its size limit
// (max.message.bytes) and makes a writer.
func Open(ctx context.Context, cfg Config) (*Writer, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.OnRetry == nil {
		cfg.OnRetry = func(error) {}
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: cfg.Transport}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{cfg.Topic}})
	if err != nil {
		return nil, fmt.Errorf("dead-letter topic %s: %w", cfg.Topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil || len(meta.Topics[0].Partitions) == 0 {
		var terr error = kafka.UnknownTopicOrPartition
		if len(meta.Topics) == 1 && meta.Topics[0].Error != nil {
			terr = meta.Topics[0].Error
		}
		return nil, fmt.Errorf("dead-letter topic %s: %w (create it, or set the dead-letter topic)", cfg.Topic, terr)
	}
	limit := int64(DefaultMaxMessageBytes)
	resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: cfg.Topic, ConfigNames: []string{"max.message.bytes"}}}})
	if err == nil && len(resp.Resources) == 1 && resp.Resources[0].Error == nil {
		for _, e := range resp.Resources[0].ConfigEntries {
			if n, perr := strconv.ParseInt(e.ConfigValue, 10, 64); e.ConfigName == "max.message.bytes" && perr == nil && n > 0 {
				limit = n
			}
		}
	} else {
		cfg.Log.Warn("dead-letter topic: cannot read max.message.bytes; assuming the default", "topic", cfg.Topic,
			"assumed", limit, "err", errors.Join(err, firstResourceError(resp)))
	}
	maxBytes := max(limit-batchSlack, 4*batchSlack)
	return &Writer{cfg: cfg, maxBytes: maxBytes, w: &kafka.Writer{
		Addr: kafka.TCP(cfg.Brokers...), Topic: cfg.Topic, Balancer: &kafka.Murmur2Balancer{}, Transport: cfg.Transport,
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 10000, BatchBytes: maxBytes,
		MaxAttempts: 3,
	}}, nil
}

func firstResourceError(resp *kafka.DescribeConfigsResponse) error {
	if resp != nil && len(resp.Resources) > 0 {
		return resp.Resources[0].Error
	}
	return nil
}

// MaxBytes is the largest dead letter the writer sends, all included.
func (d *Writer) MaxBytes() int64 { return d.maxBytes }

// Write sends the entries and waits until the broker has them. It returns
// an error only when ctx ends first: a broker that is away is waited for,
// and a message the broker refuses is counted as Failed and logged.
func (d *Writer) Write(ctx context.Context, entries []Entry) (Report, error) {
	var rep Report
	todo := make([]pending, len(entries))
	for i, e := range entries {
		todo[i] = pending{entry: &entries[i]}
		todo[i].msg, todo[i].cut = d.message(e)
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		msgs := make([]kafka.Message, len(todo))
		for i := range todo {
			msgs[i] = todo[i].msg
		}
		err := d.w.WriteMessages(ctx, msgs...)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		errs := perMessage(err, len(todo))
		next := todo[:0:0]
		for i, p := range todo {
			switch {
			case errs[i] == nil:
				rep.count(p.cut)
			case p.refused(errs[i]):
				rep.Failed++
				src := p.entry.Source
				d.cfg.Log.Error("dead letter not written: the topic refuses it", "topic", d.cfg.Topic,
					"source", src.Topic+"/"+strconv.Itoa(src.Partition), "offset", src.Offset, "reason", p.entry.Reason,
					"bytes", len(p.msg.Key)+len(p.msg.Value), "err", errs[i])
			default:
				next = append(next, p)
			}
		}
		if todo = next; len(todo) == 0 {
			break
		}
		d.cfg.OnRetry(err)
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(min(time.Duration(1<<min(attempt, 6))*100*time.Millisecond, 5*time.Second)):
		}
	}
	return rep, nil
}

// pending is a dead letter on its way.
type pending struct {
	entry    *Entry
	msg      kafka.Message
	cut      bool
	attempts int // refused with a Kafka error
}

// refused says whether err means the broker will not take the message:
// a Kafka error that is not temporary, or a temporary one that has
// lasted protocolAttempts tries. Network errors never are.
func (p *pending) refused(err error) bool {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return true
	}
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return false
	}
	p.attempts++
	return !kerr.Temporary() || p.attempts >= protocolAttempts
}

func (r *Report) count(cut bool) {
	if cut {
		r.Truncated++
	} else {
		r.Written++
	}
}

// errNotSent marks messages kafka-go did not send because another one of
// the call was too large.
var errNotSent = errors.New("not sent")

// perMessage spreads WriteMessages' error over its n messages.
func perMessage(err error, n int) []error {
	errs := make([]error, n)
	var (
		werrs    kafka.WriteErrors
		tooLarge kafka.MessageTooLargeError
	)
	switch {
	case err == nil:
	case errors.As(err, &werrs) && len(werrs) == n:
		copy(errs, werrs)
	case errors.As(err, &tooLarge): // kafka-go's own check: nothing was sent
		for i := range errs {
			errs[i] = errNotSent
		}
		errs[n-len(tooLarge.Remaining)-1] = err
	default:
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// message is e as a dead letter, cut to fit the topic if it must be.
func (d *Writer) message(e Entry) (kafka.Message, bool) {
	detail := e.Detail
	if len(detail) > MaxDetail {
		detail = cutUTF8(detail, MaxDetail-len("…")) + "…"
	}
	msg := kafka.Message{
		Key: e.Source.Key, Value: e.Source.Value,
		Headers: []kafka.Header{
			{Key: HeaderReason, Value: []byte(e.Reason)},
			{Key: HeaderDetail, Value: []byte(detail)},
			{Key: HeaderTopic, Value: []byte(e.Source.Topic)},
			{Key: HeaderPartition, Value: []byte(strconv.Itoa(e.Source.Partition))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(e.Source.Offset, 10))},
		},
	}
	if size(msg) <= d.maxBytes {
		return msg, false
	}
	sum := sha256.Sum256(e.Source.Value)
	msg.Headers = append(msg.Headers,
		kafka.Header{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(e.Source.Value)))},
		kafka.Header{Key: HeaderOriginalSHA256, Value: []byte(hex.EncodeToString(sum[:]))})
	if len(msg.Key) > maxCutKey {
		msg.Key = msg.Key[:maxCutKey]
	}
	keep := max(d.maxBytes-(size(msg)-int64(len(msg.Value))), 0)
	msg.Value = msg.Value[:min(keep, int64(len(msg.Value)))]
	return msg, true
}

// size is what a message takes in a batch, as kafka-go counts it (an
// upper bound of the record's encoding): key, value and headers, and a
// fixed part.
func size(m kafka.Message) int64 {
	n := int64(len(m.Key) + len(m.Value) + 64)
	for _, h := range m.Headers {
		n += int64(len(h.Key) + len(h.Value) + 16)
	}
	return n
}

// cutUTF8 returns at most n bytes of s, not splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Close flushes and closes the writer.
func (d *Writer) Close() error { return d.w.Close() }
