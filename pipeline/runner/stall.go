package runner

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// A unit another member was given, with events waiting, whose committed
// offsets have not moved for stallLimit is worked by nobody: its member
// is gone without the coordinator noticing. The dev broker (kfake) keeps
// a member killed while joining for good: its session timer starts only
// when its JoinGroup answer is delivered. Leaving and joining again makes
// the group rebalance, and a member that does not rejoin is dropped. A
// real coordinator expires such a member itself, so this rarely acts
// there; rejoins are at most one per rejoinEvery.
const (
	stallCheckEvery = 5 * time.Second
	rejoinEvery     = 5 * time.Minute
)

// stallWatch remembers other members' units' committed offsets.
type stallWatch struct {
	lastCheck, lastRejoin time.Time
	committed             map[topicPartition]int64
	since                 map[topicPartition]time.Time
}

// stallLimit is how long a unit's commits may stand still with events
// waiting: owners commit at every checkpoint in which they moved on.
func (r *Runner) stallLimit() time.Duration {
	return max(3*r.cfg.CheckpointInterval, 30*time.Second)
}

// stalled reads the group's committed offsets and the partitions' ends,
// and says whether a unit of another member has stood still too long.
func (r *Runner) stalled(ctx context.Context) bool {
	w := &r.stall
	now := time.Now()
	if now.Sub(w.lastCheck) < stallCheckEvery || now.Sub(w.lastRejoin) < rejoinEvery || r.assigned.gen == nil {
		return false
	}
	w.lastCheck = now
	if w.committed == nil {
		w.committed, w.since = map[topicPartition]int64{}, map[topicPartition]time.Time{}
	}
	topics := map[string][]int{}
	ends := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}, IsolationLevel: kafka.ReadCommitted}
	for p := range r.partitions {
		if r.units[p] != nil {
			continue
		}
		for _, t := range r.partitionsOf(p) {
			topics[t.topic] = append(topics[t.topic], t.partition)
			ends.Topics[t.topic] = append(ends.Topics[t.topic], kafka.LastOffsetOf(t.partition))
		}
	}
	if len(topics) == 0 {
		return false
	}
	committed, err := r.kafka.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: r.cfg.Group, Topics: topics})
	if err != nil || committed.Error != nil {
		return false
	}
	end, err := r.kafka.ListOffsets(ctx, ends)
	if err != nil {
		return false
	}
	last := map[topicPartition]int64{}
	for topic, parts := range end.Topics {
		for _, p := range parts {
			last[topicPartition{topic, p.Partition}] = p.LastOffset
		}
	}
	for topic, parts := range committed.Topics {
		for _, p := range parts {
			t := topicPartition{topic, p.Partition}
			if off, seen := w.committed[t]; !seen || off != p.CommittedOffset {
				w.committed[t], w.since[t] = p.CommittedOffset, now
				continue
			}
			if last[t] > max(p.CommittedOffset, 0) && now.Sub(w.since[t]) > r.stallLimit() {
				r.cfg.Log.Warn("a unit of another member has not moved with events waiting; joining the group again so that it rebalances",
					"partition", t.String(), "committed", p.CommittedOffset, "end", last[t], "for", now.Sub(w.since[t]).Round(time.Second))
				w.lastRejoin = now
				clear(w.committed)
				return true
			}
		}
	}
	return false
}
