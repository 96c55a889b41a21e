// Package localkafka runs an embedded Kafka-protocol broker (franz-go's
// kfake) for `seatflow dev`, `make run` and integration tests: no JVM, no
// Docker, a real Kafka wire protocol that kafka-go, kcat and librdkafka
// clients speak. With a data directory its logs and committed group offsets
// survive a clean stop and a kill -9.
//
// One trap, unlike a Kafka broker: kfake arms a group member's session
// timer only when its JoinGroup answer is delivered, so a member killed
// while joining stays in the group for good, holding its partitions. The
// pipeline's runner rejoins when a partial assignment stands too long
// (runner.TestMemberGoneMidJoin makes such a member).
package localkafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/seatflow/seatflow/pipeline/fetch"
)

// Options configure a broker.
type Options struct {
	// Addr is host:port of the (first) broker; port 0 picks a free one.
	// Default 127.0.0.1:0.
	Addr string
	// Brokers in the cluster (default 1); the others take free ports.
	Brokers int
	// DataDir persists logs and offsets; empty keeps everything in memory.
	DataDir string
	// Topics to create when missing, each with Partitions partitions
	// (default 6).
	Topics     []string
	Partitions int
	// MinSessionTimeout lets tests use short consumer-group session
	// timeouts (kfake's default minimum is 6 s, as Kafka's).
	MinSessionTimeout time.Duration
	// TLS, when set, makes the broker listen with TLS only; ClientTLS is
	// what the broker's own requests (creating topics) connect with.
	TLS, ClientTLS *tls.Config
	// SASL users, when any, are required of every client: mechanism
	// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), user and password. The first
	// is what the broker's own requests authenticate as.
	SASL []SASLUser
}

// SASLUser is a user the broker accepts.
type SASLUser struct{ Mechanism, User, Password string }

// Broker is a running embedded Kafka-protocol cluster.
type Broker struct {
	cluster    *kfake.Cluster
	clientTLS  *tls.Config
	clientSASL sasl.Mechanism
}

// Start runs the broker and creates missing topics.
func Start(ctx context.Context, opt Options) (*Broker, error) {
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	if opt.Brokers <= 0 {
		opt.Brokers = 1
	}
	if opt.Partitions <= 0 {
		opt.Partitions = 6
	}
	host, portStr, err := net.SplitHostPort(opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("broker address %q: %w (want host:port)", opt.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("broker address %q: bad port", opt.Addr)
	}
	ports := make([]int, opt.Brokers)
	ports[0] = port
	kopts := []kfake.Opt{
		kfake.Ports(ports...),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			// kfake listens on 127.0.0.1; honour the configured host.
			_, p, _ := net.SplitHostPort(addr)
			return net.Listen(network, net.JoinHostPort(host, p))
		}),
		kfake.DefaultNumPartitions(opt.Partitions),
	}
	if opt.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opt.DataDir))
	}
	if opt.MinSessionTimeout > 0 {
		kopts = append(kopts, kfake.GroupMinSessionTimeout(opt.MinSessionTimeout))
	}
	if opt.TLS != nil {
		kopts = append(kopts, kfake.TLS(opt.TLS))
	}
	var clientSASL sasl.Mechanism
	if len(opt.SASL) > 0 {
		kopts = append(kopts, kfake.EnableSASL())
		for _, u := range opt.SASL {
			kopts = append(kopts, kfake.Superuser(u.Mechanism, u.User, u.Password))
		}
		u := opt.SASL[0]
		if clientSASL, err = fetch.SASL(u.Mechanism, u.User, u.Password); err != nil {
			return nil, err
		}
	}
	cluster, err := kfake.NewCluster(kopts...)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return nil, fmt.Errorf("start Kafka broker on %s: %w (is another broker running? choose another address)", opt.Addr, err)
		}
		return nil, fmt.Errorf("start Kafka broker: %w", err)
	}
	b := &Broker{cluster: cluster, clientTLS: opt.ClientTLS, clientSASL: clientSASL}
	if len(opt.Topics) > 0 {
		if err := b.CreateTopics(ctx, opt.Partitions, opt.Topics...); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Addrs are the brokers' host:port addresses.
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// Close stops the broker, flushing its data directory.
func (b *Broker) Close() { b.cluster.Close() }

// CreateTopics creates the topics that do not exist yet. Persisted topics
// keep the partition count they were created with.
func (b *Broker) CreateTopics(ctx context.Context, partitions int, topics ...string) error {
	return createTopics(ctx, b.Addrs(), &kafka.Transport{TLS: b.clientTLS, SASL: b.clientSASL}, partitions, topics...)
}

// CreateTopics creates missing topics on any Kafka cluster.
func CreateTopics(ctx context.Context, brokers []string, partitions int, topics ...string) error {
	return createTopics(ctx, brokers, &kafka.Transport{}, partitions, topics...)
}

// createTopics creates them through transport: its own, as kafka-go's
// shared one may hold a connection to a broker that has since restarted on
// the same address.
func createTopics(ctx context.Context, brokers []string, transport *kafka.Transport, partitions int, topics ...string) error {
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: transport}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for topic, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}
