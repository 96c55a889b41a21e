package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/seatflow/seatflow/localch/launch"
	"github.com/seatflow/seatflow/localkafka"
)

// devCommand runs the local stack: the embedded Kafka-protocol broker and
// the local ClickHouse, both persisting under one data directory.
func devCommand(app *kingpin.Application) (string, func(context.Context) error) {
	cmd := app.Command("dev", "Run the local stack: an embedded Kafka-protocol broker and the local ClickHouse (chDB engine), until Ctrl-C.")
	kafkaAddr := cmd.Flag("kafka.listen-address", "Address of the embedded Kafka broker.").Default("127.0.0.1:9092").String()
	partitions := cmd.Flag("kafka.partitions", "Partitions of each seatflow topic when the broker creates it.").Default("6").Int()
	chAddr := cmd.Flag("clickhouse.listen-address", "Address of the local ClickHouse's HTTP interface.").Default("127.0.0.1:8123").String()
	dataDir := cmd.Flag("data-dir", "Where the broker's logs and ClickHouse's databases live; they survive restarts.").Default(".seatflow/dev").String()
	return cmd.FullCommand(), func(ctx context.Context) error {
		if *partitions < 1 {
			return fmt.Errorf("--kafka.partitions must be at least 1, got %d", *partitions)
		}
		dir, err := filepath.Abs(*dataDir)
		if err != nil {
			return err
		}
		start := time.Now()
		broker, err := localkafka.Start(ctx, localkafka.Options{
			Addr: *kafkaAddr, DataDir: filepath.Join(dir, "kafka"),
			Topics: localkafka.DefaultTopics, Partitions: *partitions,
		})
		if err != nil {
			return err
		}
		defer broker.Close()
		kafkaReady := time.Since(start)

		start = time.Now()
		ch, err := launch.Start(ctx, launch.Options{
			Addr: *chAddr, DataDir: filepath.Join(dir, "clickhouse"),
			Progress: os.Stderr, Log: os.Stderr,
		})
		if err != nil {
			return fmt.Errorf("local ClickHouse: %w", err)
		}
		chReady := time.Since(start)

		fmt.Printf("Kafka (embedded broker):  %v  topics %v  (ready in %s)\n", broker.Addrs(), localkafka.DefaultTopics, kafkaReady.Round(time.Millisecond))
		fmt.Printf("ClickHouse (local, chDB): %s  pid %d  (ready in %s)\n", ch.URL(), ch.Pid(), chReady.Round(time.Millisecond))
		fmt.Printf("Data directory:           %s\n", dir)
		fmt.Printf("Try:  curl '%s/?query=SELECT%%20version()'\n", ch.URL())
		fmt.Println("Press Ctrl-C to stop.")

		select {
		case <-ctx.Done():
		case <-ch.Exited():
			return fmt.Errorf("local ClickHouse exited unexpectedly")
		}
		fmt.Println("stopping...")
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return ch.Stop(stopCtx)
	}
}
