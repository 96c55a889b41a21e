package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/testenv"
)

type devStack struct {
	cmd        *exec.Cmd
	kafka      string
	clickhouse string
	chPid      int
}

var (
	kafkaLine = regexp.MustCompile(`^Kafka \(embedded broker\):\s+\[([^\]]+)\]`)
	chLine    = regexp.MustCompile(`^ClickHouse \(local, chDB\): (http://\S+)\s+pid (\d+)`)
)

func startDev(t *testing.T, bin, dataDir string) *devStack {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--services-only", "--data-dir", dataDir,
		"--kafka.listen-address", "127.0.0.1:0", "--clickhouse.listen-address", "127.0.0.1:0")
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &devStack{cmd: cmd}
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if m := kafkaLine.FindStringSubmatch(line); m != nil {
			s.kafka = m[1]
		}
		if m := chLine.FindStringSubmatch(line); m != nil {
			s.clickhouse = m[1]
			s.chPid = atoi(m[2])
		}
		if strings.HasPrefix(line, "Press Ctrl-C") {
			break
		}
	}
	if s.kafka == "" || s.clickhouse == "" {
		t.Fatalf("seatflow dev did not report its addresses")
	}
	go io.Copy(io.Discard, out)
	return s
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func chQuery(t *testing.T, base, query string) string {
	t.Helper()
	resp, err := http.Post(base+"/?query="+url.QueryEscape(query), "text/plain", nil)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", query, resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b))
}

// TestDevStackSurvivesKill9 writes to the dev broker and the local
// ClickHouse, kills both processes with SIGKILL, starts the stack again on
// the same data directory and finds everything there.
func TestDevStackSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	bin := testenv.BuildSeatflow(t)
	data := t.TempDir()
	s := startDev(t, bin, data)

	w := &kafka.Writer{Addr: kafka.TCP(s.kafka), Topic: event.UsageTopic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	msgs := make([]kafka.Message, 100)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte("t-1"), Value: []byte("event")}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	chQuery(t, s.clickhouse, "CREATE TABLE default.keep (n UInt64) ENGINE = MergeTree ORDER BY n")
	chQuery(t, s.clickhouse, "INSERT INTO default.keep SELECT number FROM numbers(1000)")

	syscall.Kill(s.chPid, syscall.SIGKILL)
	s.cmd.Process.Kill()
	s.cmd.Wait()
	for i := 0; i < 100 && syscall.Kill(s.chPid, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}

	s = startDev(t, bin, data)
	defer func() {
		s.cmd.Process.Signal(os.Interrupt)
		s.cmd.Wait()
	}()
	if got := chQuery(t, s.clickhouse, "SELECT count(), sum(n) FROM default.keep"); got != "1000\t499500" {
		t.Errorf("ClickHouse after kill -9: %q, want 1000 rows", got)
	}
	client := &kafka.Client{Addr: kafka.TCP(s.kafka)}
	resp, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		event.UsageTopic: {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2), kafka.LastOffsetOf(3), kafka.LastOffsetOf(4), kafka.LastOffsetOf(5)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range resp.Topics[event.UsageTopic] {
		total += p.LastOffset
	}
	if total != 100 {
		t.Errorf("Kafka after kill -9: %d messages, want 100", total)
	}
}
