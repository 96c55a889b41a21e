package runner

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// checkTopics refuses topics whose partition counts differ: partition p
// of both must hold the same tenants.
func (r *Runner) checkTopics(ctx context.Context) error {
	lic, use, err := r.partitionCounts(ctx)
	if err != nil {
		return err
	}
	if lic != use {
		return fmt.Errorf("topics %s (%d partitions) and %s (%d partitions) must have the same partition count: one tenant's license and usage events must land on the same partition number (SPEC §2)",
			r.cfg.LicenseTopic, lic, r.cfg.UsageTopic, use)
	}
	r.partitions = lic
	for p := range r.partitions {
		for _, t := range r.partitionsOf(p) {
			r.credits[t] = make(chan struct{}, batchesInFlight)
			r.spare[t] = make(chan spare, batchesInFlight+1)
		}
	}
	return nil
}

// checkPartitionCounts stops the run when a topic has grown: tenants
// would hash to other partitions than their state's.
func (r *Runner) checkPartitionCounts(ctx context.Context) error {
	lic, use, err := r.partitionCounts(ctx)
	if err != nil {
		r.cfg.Log.Warn("read partition counts", "err", err)
		return nil // the next check tries again
	}
	if lic != r.partitions || use != r.partitions {
		return fmt.Errorf("topics %s and %s now have %d and %d partitions, not %d: tenants' events would move to other units than their figures. Stop every replica and follow \"Growing partitions\" in docs/operations.md",
			r.cfg.LicenseTopic, r.cfg.UsageTopic, lic, use, r.partitions)
	}
	return nil
}

func (r *Runner) partitionCounts(ctx context.Context) (license, usage int, err error) {
	meta, err := r.kafka.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{r.cfg.LicenseTopic, r.cfg.UsageTopic}})
	if err != nil {
		return 0, 0, fmt.Errorf("connect to Kafka at %v: %w", r.cfg.Brokers, err)
	}
	counts := map[string]int{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return 0, 0, fmt.Errorf("topic %s: %w (create it, or set the topic flags)", t.Name, t.Error)
		}
		counts[t.Name] = len(t.Partitions)
	}
	for _, topic := range []string{r.cfg.LicenseTopic, r.cfg.UsageTopic} {
		if counts[topic] == 0 {
			return 0, 0, fmt.Errorf("topic %s: %w (create it, or set the topic flags)", topic, kafka.UnknownTopicOrPartition)
		}
	}
	return counts[r.cfg.LicenseTopic], counts[r.cfg.UsageTopic], nil
}
