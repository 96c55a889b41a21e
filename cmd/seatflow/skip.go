package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/runner"
)

func skipBatchCommand(app *kingpin.Application) (string, func(context.Context) error) {
	cmd := app.Command("skip-batch", "Send record batches that cannot be read (a corrupt batch, named by /readyz and seatflow_corrupt_batches) to the dead-letter topic, whole, and let the pipeline read on after them.")
	k, ch := addKafkaFlags(cmd), addClickHouseFlags(cmd)
	group := cmd.Flag("kafka.group", "Consumer group of the pipeline that is stuck.").Default("seatflow").String()
	topic := cmd.Flag("topic", "Topic of the stuck partition.").Required().String()
	partition := cmd.Flag("partition", "The stuck partition.").Required().Int32()
	from := cmd.Flag("offset", "First offset of the batch that cannot be read, as /readyz says.").Required().Int64()
	to := cmd.Flag("to", "Last offset to skip, when unreadable batches follow the first; by default the first batch's last. Every batch in the range must be unreadable.").Default("-1").Int64()
	return cmd.FullCommand(), func(ctx context.Context) error {
		if *topic != k.licenseTopic && *topic != k.usageTopic {
			return fmt.Errorf("--topic %q is neither --kafka.license-topic (%s) nor --kafka.usage-topic (%s)", *topic, k.licenseTopic, k.usageTopic)
		}
		if *to >= 0 && *to < *from {
			return fmt.Errorf("--to (%d) is before --offset (%d)", *to, *from)
		}
		sec, err := k.security()
		if err != nil {
			return err
		}
		conn, err := ch.open(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		cfg := runner.Config{Brokers: k.brokerList(), TLS: sec.TLS, SASL: sec.SASL, LicenseTopic: k.licenseTopic, UsageTopic: k.usageTopic,
			DeadLetterTopic: k.deadTopic, Group: *group, Database: ch.database, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
		skip, err := runner.SkipUnreadable(ctx, cfg, conn, *topic, *partition, *from, *to)
		if err != nil {
			return redactErr(err, ch.dsn)
		}
		fmt.Printf("%s/%d offsets %d-%d are in the dead-letter topic %s (reason %s); the pipeline reads on after them\n",
			skip.Topic, skip.Partition, skip.From, skip.To, k.deadTopic, event.CorruptBatch)
		return nil
	}
}
