package deadletter_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/sinks/deadletter"
	"github.com/seatflow/seatflow/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestWriteCutsWhatTheTopicCannotHold: a topic holding 20 KB messages
// takes small dead letters whole, a 700 KB one as a prefix with the
// original's size and SHA-256, and a long detail cut to 1 KB; once the
// topic takes only 100 bytes, a dead letter is counted as failed, logged,
// and the write still returns.
func TestWriteCutsWhatTheTopicCannotHold(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 1})
	k.SetTopicConfig(t, k.DeadLetter, "max.message.bytes", "20000")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs bytes.Buffer
	w, err := deadletter.Open(ctx, deadletter.Config{Brokers: k.Brokers, Topic: k.DeadLetter, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := w.MaxBytes(); got <= 0 || got > 20000 {
		t.Fatalf("MaxBytes %d: not within the topic's 20000", got)
	}

	big := bytes.Repeat([]byte(`{"type":"x","pad":"0123456789"}`), 700_000/31)
	entries := []deadletter.Entry{
		{Source: kafka.Message{Topic: "in", Partition: 2, Offset: 7, Key: []byte("t-1"), Value: []byte(`{"type":"login"}`)}, Reason: "unknown_type", Detail: "small"},
		{Source: kafka.Message{Topic: "in", Partition: 2, Offset: 8, Key: []byte("t-1"), Value: big}, Reason: "unknown_type", Detail: strings.Repeat("é", 3000)},
	}
	rep, err := w.Write(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	if rep != (deadletter.Report{Written: 1, Truncated: 1}) {
		t.Errorf("report %+v, want 1 written and 1 truncated", rep)
	}
	got := read(t, k, 2)
	headers := func(m kafka.Message) map[string]string {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		return h
	}
	if h := headers(got[0]); string(got[0].Value) != `{"type":"login"}` || h[deadletter.HeaderOriginalSize] != "" || h[deadletter.HeaderOffset] != "7" {
		t.Errorf("small dead letter: value %q headers %v", got[0].Value, h)
	}
	h := headers(got[1])
	sum := sha256.Sum256(big)
	switch {
	case !bytes.HasPrefix(big, got[1].Value) || len(got[1].Value) < 10_000:
		t.Errorf("big dead letter: %d bytes, not a prefix of at least 10000 of the original", len(got[1].Value))
	case h[deadletter.HeaderOriginalSize] != strconv.Itoa(len(big)) || h[deadletter.HeaderOriginalSHA256] != hex.EncodeToString(sum[:]):
		t.Errorf("big dead letter: original size %q sha256 %q", h[deadletter.HeaderOriginalSize], h[deadletter.HeaderOriginalSHA256])
	case len(h[deadletter.HeaderDetail]) > deadletter.MaxDetail || !strings.HasPrefix(h[deadletter.HeaderDetail], "éé"):
		t.Errorf("detail of %d bytes, want a prefix of at most %d", len(h[deadletter.HeaderDetail]), deadletter.MaxDetail)
	case h[deadletter.HeaderReason] != "unknown_type" || h[deadletter.HeaderTopic] != "in" || h[deadletter.HeaderPartition] != "2":
		t.Errorf("big dead letter headers %v", h)
	}

	// the topic shrinks below what even a cut dead letter needs
	k.SetTopicConfig(t, k.DeadLetter, "max.message.bytes", "100")
	rep, err = w.Write(ctx, entries[:1])
	if err != nil {
		t.Fatalf("a refused dead letter stopped the write: %v", err)
	}
	if rep != (deadletter.Report{Failed: 1}) {
		t.Errorf("report %+v, want 1 failed", rep)
	}
	if !strings.Contains(logs.String(), "dead letter not written") || !strings.Contains(logs.String(), "offset=7") {
		t.Errorf("the lost dead letter was not logged with its source: %s", logs.String())
	}
}

func TestOpenRefusesAMissingTopic(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := deadletter.Open(ctx, deadletter.Config{Brokers: k.Brokers, Topic: "no-such-topic", Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Fatalf("Open of a missing topic: %v, want an error naming it", err)
	}
}

// read reads n messages of the dead-letter topic's partition 0.
func read(t *testing.T, k *testenv.Kafka, n int) []kafka.Message {
	t.Helper()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers, Topic: k.DeadLetter, Partition: 0, MaxWait: 100 * time.Millisecond, MaxBytes: 10 << 20})
	defer rd.Close()
	var out []kafka.Message
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := rd.ReadMessage(ctx)
		cancel()
		if err != nil {
			t.Fatalf("read dead letter %d of %d: %v", len(out)+1, n, err)
		}
		out = append(out, m)
	}
	return out
}
