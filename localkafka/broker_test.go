package localkafka_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/localkafka"
	"github.com/seatflow/seatflow/pipeline/event"
)

func start(t *testing.T, opt localkafka.Options) *localkafka.Broker {
	t.Helper()
	b, err := localkafka.Start(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func produce(t *testing.T, brokers []string, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// readAll reads every partition of topic to its end.
func readAll(t *testing.T, brokers []string, topic string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range parts {
		pc, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := pc.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < last; {
			pc.Seek(off, kafka.SeekAbsolute)
			m, err := pc.ReadMessage(1 << 20)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d %s %s", p.ID, m.Key, m.Value))
			off = m.Offset + 1
		}
		pc.Close()
	}
	sort.Strings(got)
	return got
}

func TestTopicsCreatedAndMessagesRoundTrip(t *testing.T) {
	b := start(t, localkafka.Options{Topics: event.Topics, Partitions: 6})
	defer b.Close()
	conn, err := kafka.Dial("tcp", b.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, topic := range event.Topics {
		parts, err := conn.ReadPartitions(topic)
		if err != nil || len(parts) != 6 {
			t.Fatalf("topic %s: %d partitions, %v", topic, len(parts), err)
		}
	}
	produce(t, b.Addrs(), event.UsageTopic,
		kafka.Message{Key: []byte("t-1"), Value: []byte("a")},
		kafka.Message{Key: []byte("t-1"), Value: []byte("b")})
	got := readAll(t, b.Addrs(), event.UsageTopic)
	if len(got) != 2 || got[0][0] != got[1][0] {
		t.Errorf("got %v: want both messages of one key on one partition", got)
	}
}

func TestDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := start(t, localkafka.Options{DataDir: dir, Topics: []string{"keep"}, Partitions: 2})
	produce(t, b.Addrs(), "keep", kafka.Message{Key: []byte("k"), Value: []byte("v1")})
	addr := b.Addrs()[0]
	b.Close()
	b = start(t, localkafka.Options{Addr: addr, DataDir: dir, Topics: []string{"keep"}, Partitions: 2})
	defer b.Close()
	produce(t, b.Addrs(), "keep", kafka.Message{Key: []byte("k"), Value: []byte("v2")})
	got := readAll(t, b.Addrs(), "keep")
	if len(got) != 2 || !strings.HasSuffix(got[0], "k v1") || !strings.HasSuffix(got[1], "k v2") {
		t.Errorf("after restart: %v", got)
	}
}

// TestKcatInterop has Debian's kcat (librdkafka, a non-Go client) produce
// with Kafka's default partitioner and consume what kafka-go produced.
func TestKcatInterop(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed; make test installs it (apt-get install kcat)")
		}
		t.Skip("kcat not installed (apt-get install kcat)")
	}
	b := start(t, localkafka.Options{Topics: []string{"from-kcat", "from-go"}, Partitions: 6})
	defer b.Close()
	var in bytes.Buffer
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&in, "t-%d\tv%d\n", i, i)
	}
	cmd := exec.Command(kcat, "-b", b.Addrs()[0], "-P", "-t", "from-kcat", "-K", "\t", "-X", "topic.partitioner=murmur2_random")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	got := readAll(t, b.Addrs(), "from-kcat")
	if len(got) != 50 {
		t.Fatalf("read %d messages from kcat, want 50", len(got))
	}
	// kafka-go's Murmur2Balancer must put each key where kcat (Kafka's
	// default partitioner) did, or one tenant's events would split.
	var msgs []kafka.Message
	for i := 0; i < 50; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint("t-", i)), Value: []byte(fmt.Sprint("v", i))})
	}
	produce(t, b.Addrs(), "from-go", msgs...)
	if goSide := readAll(t, b.Addrs(), "from-go"); strings.Join(goSide, "\n") != strings.Join(got, "\n") {
		t.Errorf("partitioning differs between kcat and kafka-go:\n%v\n%v", got, goSide)
	}
	out, err := exec.Command(kcat, "-b", b.Addrs()[0], "-C", "-t", "from-go", "-e", "-q", "-f", "%p %k %s\n").Output()
	if err != nil {
		t.Fatalf("kcat consume: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(lines)
	if strings.Join(lines, "\n") != strings.Join(got, "\n") {
		t.Errorf("kcat read back\n%v\nwant\n%v", lines, got)
	}
}
