// Package fetch reads Kafka partitions on the pipeline's hot path.
//
// kafka-go's Batch reads each record through layers of buffered readers, a
// byte at a time, and allocates its key and value: about 800 ns a message
// on our 2-core machine, more than decoding and applying the event. Here a
// fetch response is read whole into one buffer; its record batches are
// checked and decompressed (by kafka-go's codecs) into one arena a fetch,
// and each record's key and value are sliced out of the arena in place.
// franz-go's kmsg encodes and decodes the protocol's messages: only the
// framing of requests on the connection is written here.
//
// Consumer groups, offset commits and producing stay with kafka-go.
package fetch

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Protocol versions spoken, the newest each broker supports within these
// bounds. Fetch v4 is the first with record batches (Kafka 0.11) and
// v11 the last before the flexible encoding; ListOffsets v1 is the first
// with one offset per answer. Kafka 4 still serves all of them.
const (
	minFetchVersion, maxFetchVersion = 4, 11
	minListVersion, maxListVersion   = 1, 5
)

// maxResponse bounds a response's size: a larger size prefix means the
// stream is not a Kafka response.
const maxResponse = 1 << 30

// Conn is one connection to a broker for fetches and offset lookups. It is
// not safe for concurrent use; the runner gives each partition its own.
type Conn struct {
	nc      net.Conn
	addr    string
	format  *kmsg.RequestFormatter
	corr    int32
	fetchV  int16
	listV   int16
	out, in []byte // the last request and response, reused
	broken  error  // a call that failed midway: the stream's framing is lost
	batches decoder
}

// Security is how connections to the brokers are secured: TLS and SASL,
// each when set.
type Security struct {
	TLS  *tls.Config
	SASL sasl.Mechanism
}

// SASL is the client side of a SASL mechanism (PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512) for user and password, as kafka-go implements them.
func SASL(mechanism, user, password string) (sasl.Mechanism, error) {
	switch mechanism {
	case "PLAIN":
		return plain.Mechanism{Username: user, Password: password}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, user, password)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, user, password)
	}
	return nil, fmt.Errorf("SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
}

// Dial connects to the broker at addr, agrees on protocol versions and
// authenticates, as sec asks.
func Dial(ctx context.Context, addr string, sec Security) (*Conn, error) {
	tlsConfig := sec.TLS
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if tlsConfig != nil {
		cfg := tlsConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		nc = tc
	}
	c := &Conn{nc: nc, addr: addr, format: kmsg.NewRequestFormatter(kmsg.FormatterClientID("seatflow"))}
	if err := c.negotiate(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("broker %s: %w", addr, err)
	}
	if sec.SASL != nil {
		if err := c.authenticate(ctx, sec.SASL); err != nil {
			nc.Close()
			return nil, fmt.Errorf("broker %s: %w", addr, err)
		}
	}
	return c, nil
}

// authenticate runs SASL (SaslHandshake v1, then SaslAuthenticate v1
// rounds) with mechanism m, which kafka-go's sasl packages implement.
func (c *Conn) authenticate(ctx context.Context, m sasl.Mechanism) error {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, m.Name()
	hr := kmsg.NewPtrSASLHandshakeResponse()
	if err := c.roundTrip(ctx, hs, hr, 10*time.Second); err != nil {
		return fmt.Errorf("SASL handshake: %w", err)
	}
	if hr.ErrorCode != 0 {
		return fmt.Errorf("SASL mechanism %s: %w (the broker offers %v)", m.Name(), kafka.Error(hr.ErrorCode), hr.SupportedMechanisms)
	}
	host, port, _ := net.SplitHostPort(c.addr)
	p, _ := strconv.Atoi(port)
	sess, out, err := m.Start(sasl.WithMetadata(ctx, &sasl.Metadata{Host: host, Port: p}))
	if err != nil {
		return fmt.Errorf("SASL %s: %w", m.Name(), err)
	}
	for done := false; !done; {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version, req.SASLAuthBytes = 1, out
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := c.roundTrip(ctx, req, resp, 10*time.Second); err != nil {
			return fmt.Errorf("SASL %s: %w", m.Name(), err)
		}
		if resp.ErrorCode != 0 {
			msg := ""
			if resp.ErrorMessage != nil {
				msg = ": " + *resp.ErrorMessage
			}
			return fmt.Errorf("SASL %s: %w%s", m.Name(), kafka.Error(resp.ErrorCode), msg)
		}
		if done, out, err = sess.Next(ctx, resp.SASLAuthBytes); err != nil {
			return fmt.Errorf("SASL %s: %w", m.Name(), err)
		}
	}
	return nil
}

// DialLeader connects to the broker that leads the partition, asking the
// brokers in turn where it is.
func DialLeader(ctx context.Context, brokers []string, topic string, partition int, sec Security) (*Conn, error) {
	d := kafka.Dialer{Timeout: 10 * time.Second, TLS: sec.TLS, SASLMechanism: sec.SASL}
	err := errors.New("no broker given")
	for _, b := range brokers {
		var leader kafka.Broker
		if leader, err = d.LookupLeader(ctx, "tcp", b, topic, partition); err == nil {
			return Dial(ctx, net.JoinHostPort(leader.Host, strconv.Itoa(leader.Port)), sec)
		}
	}
	return nil, fmt.Errorf("find the leader of %s/%d: %w", topic, partition, err)
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

func (c *Conn) negotiate(ctx context.Context) error {
	req := kmsg.NewPtrApiVersionsRequest() // v0: every broker answers it
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := c.roundTrip(ctx, req, resp, 10*time.Second); err != nil {
		return fmt.Errorf("api versions: %w", err)
	}
	if resp.ErrorCode != 0 {
		return fmt.Errorf("api versions: %w", kafka.Error(resp.ErrorCode))
	}
	var err1, err2 error
	c.fetchV, err1 = pick(resp, "Fetch", (*kmsg.FetchRequest)(nil).Key(), minFetchVersion, maxFetchVersion)
	c.listV, err2 = pick(resp, "ListOffsets", (*kmsg.ListOffsetsRequest)(nil).Key(), minListVersion, maxListVersion)
	return errors.Join(err1, err2)
}

// pick is the newest version of API key that both sides speak.
func pick(resp *kmsg.ApiVersionsResponse, name string, key, lo, hi int16) (int16, error) {
	for _, k := range resp.ApiKeys {
		if k.ApiKey == key {
			if v := min(hi, k.MaxVersion); v >= lo && v >= k.MinVersion {
				return v, nil
			}
			return 0, fmt.Errorf("the broker speaks %s v%d to v%d; seatflow needs one of v%d to v%d (Kafka 0.11 or later)",
				name, k.MinVersion, k.MaxVersion, lo, hi)
		}
	}
	return 0, fmt.Errorf("the broker does not offer the %s API", name)
}

// roundTrip sends req and reads its response into resp, within timeout
// and until ctx ends. A failure midway breaks the connection for good.
func (c *Conn) roundTrip(ctx context.Context, req kmsg.Request, resp kmsg.Response, timeout time.Duration) error {
	if c.broken != nil {
		return c.broken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.nc.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.corr++
	c.out = c.format.AppendRequest(c.out[:0], req, c.corr)
	if _, err := c.nc.Write(c.out); err != nil {
		return c.fail(ctx, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return c.fail(ctx, err)
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > maxResponse {
		return c.fail(ctx, fmt.Errorf("response of %d bytes: not a Kafka broker?", n))
	}
	c.in = slices.Grow(c.in[:0], n)[:n]
	if _, err := io.ReadFull(c.nc, c.in); err != nil {
		return c.fail(ctx, err)
	}
	if corr := int32(binary.BigEndian.Uint32(c.in)); corr != c.corr {
		return c.fail(ctx, fmt.Errorf("response to request %d, expected %d", corr, c.corr))
	}
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(c.in[4:]); err != nil {
		return c.fail(ctx, fmt.Errorf("decode %T: %w", resp, err))
	}
	return nil
}

func (c *Conn) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	c.broken = fmt.Errorf("connection to %s broken: %w", c.addr, err)
	return c.broken
}
