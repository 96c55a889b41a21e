package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/seatflow/seatflow/localkafka"
	"github.com/seatflow/seatflow/pipeline/fetch"
)

// Kafka is a test's Kafka: brokers and its own topics.
type Kafka struct {
	Brokers    []string
	License    string // license-events topic
	Usage      string // usage-events topic
	DeadLetter string // dead-letter topic
	Partitions int
	Kind       string // "server", "container" or "embedded"
	// TLS is what clients connect with when the test asked for TLS;
	// SASL how they authenticate when it asked for SASL.
	TLS  *tls.Config
	SASL sasl.Mechanism

	dataDir string // the embedded broker's logs, with OnDisk
}

// KafkaOptions tune StartKafka.
type KafkaOptions struct {
	Partitions int // per topic; default 3
	// TLS: the embedded broker listens with TLS only, with a certificate
	// of a test authority that Kafka.TLS trusts. Tests of real servers
	// and containers skip.
	TLS bool
	// SASL, a mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512): the
	// embedded broker requires it of every client; Kafka.SASL has a
	// user's credentials. Tests of real servers and containers skip.
	SASL string
	// OnDisk: the embedded broker keeps its logs in files, which
	// CorruptBatch can damage. Tests of real servers and containers skip.
	OnDisk bool
}

// StartKafka gives the test a Kafka with three fresh topics.
func StartKafka(t testing.TB, opts ...KafkaOptions) *Kafka {
	t.Helper()
	var o KafkaOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Partitions <= 0 {
		o.Partitions = 3
	}
	ctx, cancel := setupContext(t)
	defer cancel()

	k := &Kafka{Partitions: o.Partitions}
	prefix := uniqueName(t) + "."
	k.License, k.Usage, k.DeadLetter = prefix+"license-events", prefix+"usage-events", prefix+"dead-letter"
	topics := []string{k.License, k.Usage, k.DeadLetter}

	switch {
	case (o.TLS || o.SASL != "" || o.OnDisk) && (os.Getenv(EnvKafka) != "" || dockerAvailable()):
		t.Skip("TLS, SASL and damaged logs are tested against the embedded broker only")
	case os.Getenv(EnvKafka) != "":
		k.Kind, k.Brokers = "server", strings.Split(os.Getenv(EnvKafka), ",")
	case dockerAvailable():
		brokers, err := kafkaContainer(ctx)
		if err != nil {
			t.Fatalf("Kafka container: %v", err)
		}
		k.Kind, k.Brokers = "container", brokers
	default:
		opts := localkafka.Options{Topics: topics, Partitions: o.Partitions, MinSessionTimeout: 100 * time.Millisecond}
		if o.OnDisk {
			opts.DataDir = t.TempDir()
			k.dataDir = opts.DataDir
		}
		if o.TLS {
			opts.TLS, k.TLS = testTLS(t)
			opts.ClientTLS = k.TLS
		}
		if o.SASL != "" {
			opts.SASL = []localkafka.SASLUser{{Mechanism: o.SASL, User: "seatflow", Password: "test-secret"}}
			var err error
			if k.SASL, err = fetch.SASL(o.SASL, "seatflow", "test-secret"); err != nil {
				t.Fatal(err)
			}
		}
		b, err := localkafka.Start(ctx, opts)
		if err != nil {
			t.Fatalf("embedded Kafka: %v", err)
		}
		t.Cleanup(b.Close)
		k.Kind, k.Brokers = "embedded", b.Addrs()
		return k
	}
	if err := localkafka.CreateTopics(ctx, k.Brokers, o.Partitions, topics...); err != nil {
		t.Fatalf("create test topics: %v", err)
	}
	t.Cleanup(func() {
		client := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Timeout: 10 * time.Second}
		if _, err := client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: topics}); err != nil {
			t.Logf("delete test topics: %v", err)
		}
	})
	return k
}

var kafkaShared struct {
	sync.Mutex
	brokers []string
}

// kafkaImage is the official Apache Kafka image (KRaft, no ZooKeeper).
const kafkaImage = "apache/kafka:3.9.1"

// kafkaContainer starts one apache/kafka container per test process. The
// broker must advertise the host's mapped port, which is known only once the
// container runs, so the container waits for a start script that a
// post-start hook writes with that port, as testcontainers' Kafka module
// does for Confluent images.
func kafkaContainer(ctx context.Context) ([]string, error) {
	kafkaShared.Lock()
	defer kafkaShared.Unlock()
	if kafkaShared.brokers != nil {
		return kafkaShared.brokers, nil
	}
	const script = "/tmp/seatflow_start.sh"
	const public = "9093/tcp"
	ctr, err := testcontainers.Run(ctx, kafkaImage,
		testcontainers.WithExposedPorts(public),
		testcontainers.WithEnv(map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://0.0.0.0:9093,BROKER://0.0.0.0:9092,CONTROLLER://0.0.0.0:9094",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "BROKER:PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_INTER_BROKER_LISTENER_NAME":               "BROKER",
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9094",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
		}),
		testcontainers.WithEntrypoint("sh"),
		testcontainers.WithCmd("-c", "while [ ! -f "+script+" ]; do sleep 0.1; done; exec sh "+script),
		testcontainers.WithLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{func(ctx context.Context, c testcontainers.Container) error {
				if err := wait.ForMappedPort(public).WaitUntilReady(ctx, c); err != nil {
					return err
				}
				endpoint, err := c.PortEndpoint(ctx, public, "PLAINTEXT")
				if err != nil {
					return err
				}
				inspect, err := c.Inspect(ctx)
				if err != nil {
					return err
				}
				body := fmt.Sprintf("export KAFKA_ADVERTISED_LISTENERS=%s,BROKER://%s:9092\nexec /etc/kafka/docker/run\n", endpoint, inspect.Config.Hostname)
				if err := c.CopyToContainer(ctx, []byte(body), script, 0o755); err != nil {
					return err
				}
				return wait.ForLog("Kafka Server started").WithStartupTimeout(2*time.Minute).WaitUntilReady(ctx, c)
			}},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", kafkaImage, err)
	}
	endpoint, err := ctr.PortEndpoint(ctx, public, "")
	if err != nil {
		testcontainers.TerminateContainer(ctr)
		return nil, err
	}
	atExit(func() { testcontainers.TerminateContainer(ctr) })
	kafkaShared.brokers = []string{endpoint}
	return kafkaShared.brokers, nil
}

// SetTopicConfig sets one of topic's configs (e.g. max.message.bytes).
func (k *Kafka) SetTopicConfig(t testing.TB, topic, name, value string) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Timeout: 10 * time.Second}
	resp, err := client.IncrementalAlterConfigs(context.Background(), &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: name, Value: value, ConfigOperation: kafka.ConfigOperationSet}}}},
	})
	if err == nil && len(resp.Resources) == 1 {
		err = resp.Resources[0].Error
	}
	if err != nil {
		t.Fatalf("set %s=%s on topic %s: %v", name, value, topic, err)
	}
}
