package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/localkafka"
	"github.com/seatflow/seatflow/pipeline/fetch"
	"github.com/seatflow/seatflow/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// publish writes n messages in each compression, in batches of 150, with
// some null keys and some headers; it returns them as written.
func publish(t *testing.T, k *testenv.Kafka, n int) []fetch.Record {
	t.Helper()
	var all []fetch.Record
	for _, codec := range []kafka.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd} {
		w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: k.Usage, Compression: codec,
			BatchSize: 150, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			o := len(all) + i
			msgs[i] = kafka.Message{Value: fmt.Appendf(nil, `{"n":%d,"codec":%q,"pad":%q}`, o, codec, strings.Repeat("y", o%90))}
			if o%4 != 1 {
				msgs[i].Key = fmt.Appendf(nil, "tenant-%d", o%9)
			}
			if o%5 == 2 {
				msgs[i].Headers = []kafka.Header{{Key: "trace", Value: []byte("abc")}}
			}
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatalf("write %s: %v", codec, err)
		}
		w.Close()
		for _, m := range msgs {
			all = append(all, fetch.Record{Offset: int64(len(all)), Key: m.Key, Value: m.Value})
		}
	}
	return all
}

func dialLeader(t *testing.T, k *testenv.Kafka) *fetch.Conn {
	t.Helper()
	c, err := fetch.DialLeader(context.Background(), k.Brokers, k.Usage, 0, fetch.Security{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll fetches from offset to the partition's end, maxBytes at a time.
func readAll(t *testing.T, c *fetch.Conn, topic string, offset int64, maxBytes int32) []fetch.Record {
	t.Helper()
	var got []fetch.Record
	for {
		res, err := c.Fetch(context.Background(), fetch.Request{Topic: topic, Offset: offset, MaxBytes: maxBytes, MaxWait: time.Second},
			func(r fetch.Record) { got = append(got, r) })
		if err != nil {
			t.Fatalf("fetch at %d: %v", offset, err)
		}
		if res.Next <= offset {
			t.Fatalf("fetch at %d went nowhere (next %d, end %d)", offset, res.Next, res.HighWatermark)
		}
		if offset = res.Next; offset >= res.HighWatermark {
			return got
		}
	}
}

func same(t *testing.T, got, want []fetch.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Offset != w.Offset || !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("record %d: got {%d %q %q}, want {%d %q %q}", i, g.Offset, g.Key, g.Value, w.Offset, w.Key, w.Value)
		}
	}
}

// Records written by kafka-go in every compression read back as written,
// from any offset and with fetches small enough to cut batches short.
func TestFetchReadsWhatWasWritten(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 1})
	want := publish(t, k, 400)
	c := dialLeader(t, k)
	for _, maxBytes := range []int32{1 << 20, 4 << 10, 1} {
		same(t, readAll(t, c, k.Usage, 0, maxBytes), want)
	}
	for _, from := range []int64{1, 399, 400, 1234, int64(len(want) - 1)} {
		same(t, readAll(t, c, k.Usage, from, 64<<10), want[from:])
	}
}

func TestFetchOffsets(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 1})
	c := dialLeader(t, k)
	ctx := context.Background()
	if first, end, err := c.Offsets(ctx, k.Usage, 0); err != nil || first != 0 || end != 0 {
		t.Fatalf("empty partition: offsets %d, %d, %v; want 0, 0", first, end, err)
	}
	n := int64(len(publish(t, k, 10)))
	if first, end, err := c.Offsets(ctx, k.Usage, 0); err != nil || first != 0 || end != n {
		t.Fatalf("offsets %d, %d, %v; want 0, %d", first, end, err, n)
	}
	_, err := c.Fetch(ctx, fetch.Request{Topic: k.Usage, Offset: n + 5, MaxBytes: 1 << 20, MaxWait: time.Second}, func(fetch.Record) {})
	if !errors.Is(err, kafka.OffsetOutOfRange) {
		t.Fatalf("fetch past the end: %v, want OffsetOutOfRange", err)
	}
	if _, _, err := c.Offsets(ctx, k.Usage, 7); !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("offsets of a missing partition: %v, want UnknownTopicOrPartition", err)
	}
}

// A fetch waiting at the partition's end ends with its context, and the
// connection is not used again.
func TestFetchEndsWithContext(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 1})
	c := dialLeader(t, k)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.Fetch(ctx, fetch.Request{Topic: k.Usage, MaxBytes: 1 << 20, MaxWait: time.Minute}, func(fetch.Record) {})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("fetch: %v, want context.Canceled", err)
	}
	if _, _, err := c.Offsets(context.Background(), k.Usage, 0); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("after a cancelled fetch: %v, want a broken connection", err)
	}
}

// Something that is not a Kafka broker gets an error that says so.
func TestDialNotABroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			conn.Close()
		}
	}()
	_, err = fetch.Dial(context.Background(), ln.Addr().String(), fetch.Security{})
	if err == nil || !strings.Contains(err.Error(), "not a Kafka broker") {
		t.Fatalf("dial an HTTP server: %v, want an error saying it is not a Kafka broker", err)
	}
}

// In a cluster, DialLeader reaches each partition's leader whichever
// broker it asks first; another broker answers that it does not lead it.
func TestFetchFromTheLeader(t *testing.T) {
	ctx := context.Background()
	const topic = "usage"
	b, err := localkafka.Start(ctx, localkafka.Options{Brokers: 3, Topics: []string{topic}, Partitions: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addrs()...), Topic: topic, Balancer: &kafka.RoundRobin{},
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	msgs := make([]kafka.Message, 60)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: fmt.Appendf(nil, "m%d", i)}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	leaders := map[string]bool{}
	total := 0
	for p := range 6 {
		leader, err := (&kafka.Dialer{}).LookupLeader(ctx, "tcp", b.Addrs()[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort(leader.Host, strconv.Itoa(leader.Port))
		leaders[addr] = true
		for _, a := range b.Addrs() {
			c, err := fetch.Dial(ctx, a, fetch.Security{})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			_, err = c.Fetch(ctx, fetch.Request{Topic: topic, Partition: int32(p), MaxBytes: 1 << 20, MaxWait: time.Second}, func(fetch.Record) { n++ })
			c.Close()
			switch {
			case a == addr && (err != nil || n != 10):
				t.Errorf("partition %d from its leader %s: %d records, %v; want 10", p, a, n, err)
			case a != addr && !errors.Is(err, kafka.NotLeaderForPartition):
				t.Errorf("partition %d from %s, not its leader: %v; want NotLeaderForPartition", p, a, err)
			}
			if a == addr {
				total += n
			}
		}
		// asked first, every broker points DialLeader at the leader
		for i := range b.Addrs() {
			brokers := append(slices.Clone(b.Addrs()[i:]), b.Addrs()[:i]...)
			c, err := fetch.DialLeader(ctx, brokers, topic, p, fetch.Security{})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			_, err = c.Fetch(ctx, fetch.Request{Topic: topic, Partition: int32(p), MaxBytes: 1 << 20, MaxWait: time.Second}, func(fetch.Record) { n++ })
			c.Close()
			if err != nil || n != 10 {
				t.Errorf("partition %d through DialLeader asking %s first: %d records, %v; want 10", p, brokers[0], n, err)
			}
		}
	}
	if len(leaders) < 2 || total != len(msgs) {
		t.Errorf("%d leaders, %d records read; want partitions led by several brokers and all %d read", len(leaders), total, len(msgs))
	}
}
