package runner_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/consumer"
	"github.com/segmentio/kafka-go/protocol/joingroup"

	"github.com/seatflow/seatflow/pipeline/runner"
	"github.com/seatflow/seatflow/testenv"
)

// TestMemberGoneMidJoin has a second member ask to join the running
// pipeline's group and vanish before the answer, as a process killed
// during a rebalance does. The dev broker (kfake) then keeps that member,
// with its share of the units, and never expires it: nobody works them.
// The pipeline must see them stand still, join the group again (which
// drops the vanished member), consume everything, and the rows must equal
// the reference.
func TestMemberGoneMidJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a session and a rebalance timeout")
	}
	ctx := context.Background()
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 3})
	chEnv := testenv.StartClickHouse(t)
	conn := chEnv.Open(t)
	events, cat := simulated(t, 6, 20)
	half := len(events) / 2
	produce(t, k, events[:half])
	const group = "gone-mid-join"
	r := testRunner(t, k, conn, chEnv.Database, group, cat, func(c *runner.Config) { c.CheckpointInterval = 300 * time.Millisecond })
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	done := runInBackground(runCtx, r)
	waitUntil(t, runCtx, "first half consumed", func() bool { p, _, _ := r.Progress(); return p == int64(half) })

	joinAndVanish(t, k, group)
	waitUntil(t, runCtx, "a generation with the vanished member in it", func() bool {
		return members(t, k, group) == 2
	})
	produce(t, k, events[half:])
	start := time.Now()
	waitUntil(t, runCtx, "second half consumed after the vanished member", func() bool {
		p, _, _ := r.Progress()
		return p == int64(len(events))
	})
	t.Logf("consumed the second half %.1f s after the member vanished", time.Since(start).Seconds())
	cancel() // a clean stop flushes what was consumed
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for reason, m := range deadLetters(t, k) {
		t.Errorf("simulated events are all valid, yet a dead letter says %s: %s", reason, m.Value)
	}
	must(t, compare(t, conn, chEnv.Database, referenceOf(k, events, cat)))
}

// joinAndVanish sends the group's coordinator a JoinGroup for a new
// member subscribed to the pipeline's topics, and closes the connection
// without waiting for the answer.
func joinAndVanish(t *testing.T, k *testenv.Kafka, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(k.Brokers...)}
	coord, err := client.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: group, KeyType: kafka.CoordinatorKeyTypeConsumer})
	if err == nil && coord.Error != nil {
		err = coord.Error
	}
	if err != nil {
		t.Fatalf("find the coordinator of %s: %v", group, err)
	}
	sub, err := protocol.Marshal(0, consumer.Subscription{Topics: []string{k.License, k.Usage}, UserData: []byte("[]")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", net.JoinHostPort(coord.Coordinator.Host, fmt.Sprint(coord.Coordinator.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// v2: no member id round trip, so the join waits for the rebalance
	req := &joingroup.Request{GroupID: group, SessionTimeoutMS: 10_000, RebalanceTimeoutMS: 10_000,
		ProtocolType: "consumer", Protocols: []joingroup.RequestProtocol{{Name: "seatflow-units", Metadata: sub}}}
	if err := protocol.WriteRequest(c, 2, 1, "vanishing-member", req); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the coordinator read it
}

// members is how many members a stable group has; 0 while it rebalances.
func members(t *testing.T, k *testenv.Kafka, group string) int {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(k.Brokers...)}
	resp, err := client.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range resp.Groups {
		if g.GroupID == group && g.GroupState == "Stable" {
			return len(g.Members)
		}
	}
	return 0
}
