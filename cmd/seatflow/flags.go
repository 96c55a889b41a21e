package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/alecthomas/kingpin/v2"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/fetch"
	"github.com/seatflow/seatflow/schemas"
)

// kafkaFlags are the Kafka settings shared by several commands.
type kafkaFlags struct {
	brokers                             string
	licenseTopic, usageTopic, deadTopic string
	tls                                 bool
	caFile, certFile, keyFile           string
	saslMechanism, saslUser, saslPass   string
}

func addKafkaFlags(cmd *kingpin.CmdClause) *kafkaFlags {
	k := &kafkaFlags{}
	cmd.Flag("kafka.brokers", "Kafka brokers, comma-separated.").Default("127.0.0.1:9092").StringVar(&k.brokers)
	cmd.Flag("kafka.license-topic", "Topic of subscription and assignment events.").Default(event.LicenseTopic).StringVar(&k.licenseTopic)
	cmd.Flag("kafka.usage-topic", "Topic of usage events.").Default(event.UsageTopic).StringVar(&k.usageTopic)
	cmd.Flag("kafka.dead-letter-topic", "Topic rejected events go to.").Default(event.DeadLetterTopic).StringVar(&k.deadTopic)
	cmd.Flag("kafka.tls", "Connect to Kafka with TLS (the system's certificate authorities, unless --kafka.tls.ca-file).").BoolVar(&k.tls)
	cmd.Flag("kafka.tls.ca-file", "PEM file of the certificate authorities to trust for Kafka's brokers; implies --kafka.tls.").Default("").StringVar(&k.caFile)
	cmd.Flag("kafka.tls.cert-file", "PEM client certificate for Kafka (mutual TLS), with --kafka.tls.key-file.").Default("").StringVar(&k.certFile)
	cmd.Flag("kafka.tls.key-file", "PEM private key of --kafka.tls.cert-file.").Default("").StringVar(&k.keyFile)
	cmd.Flag("kafka.sasl.mechanism", "SASL mechanism to authenticate to Kafka with: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with --kafka.tls for PLAIN); empty: none.").Default("").StringVar(&k.saslMechanism)
	cmd.Flag("kafka.sasl.username", "SASL user.").Default("").StringVar(&k.saslUser)
	cmd.Flag("kafka.sasl.password", "SASL password; prefer the environment variable to the flag.").Default("").StringVar(&k.saslPass)
	return k
}

// security is how the flags ask to connect to Kafka.
func (k *kafkaFlags) security() (fetch.Security, error) {
	tlsConfig, err := k.tlsConfig()
	if err != nil {
		return fetch.Security{}, err
	}
	sec := fetch.Security{TLS: tlsConfig}
	if k.saslMechanism == "" {
		if k.saslUser != "" || k.saslPass != "" {
			return sec, errors.New("--kafka.sasl.username and --kafka.sasl.password need --kafka.sasl.mechanism")
		}
		return sec, nil
	}
	if k.saslUser == "" {
		return sec, errors.New("--kafka.sasl.mechanism needs --kafka.sasl.username (and --kafka.sasl.password)")
	}
	if sec.SASL, err = fetch.SASL(strings.ToUpper(k.saslMechanism), k.saslUser, k.saslPass); err != nil {
		return sec, fmt.Errorf("--kafka.sasl.mechanism: %w", err)
	}
	return sec, nil
}

// tlsConfig is the TLS configuration the flags ask for; nil for plain
// connections.
func (k *kafkaFlags) tlsConfig() (*tls.Config, error) {
	if !k.tls && k.caFile == "" && k.certFile == "" && k.keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if k.caFile != "" {
		pem, err := os.ReadFile(k.caFile)
		if err != nil {
			return nil, fmt.Errorf("--kafka.tls.ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--kafka.tls.ca-file %s: no PEM certificate in it", k.caFile)
		}
	}
	if (k.certFile == "") != (k.keyFile == "") {
		return nil, errors.New("--kafka.tls.cert-file and --kafka.tls.key-file go together: set both or neither")
	}
	if k.certFile != "" {
		cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--kafka.tls.cert-file, --kafka.tls.key-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (k *kafkaFlags) brokerList() []string {
	var out []string
	for _, b := range strings.Split(k.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// clickhouseFlags say where the tables are.
type clickhouseFlags struct {
	dsn, database string
}

func addClickHouseFlags(cmd *kingpin.CmdClause) *clickhouseFlags {
	c := &clickhouseFlags{}
	cmd.Flag("clickhouse.dsn", "ClickHouse DSN: clickhouse://user:pass@host:9000 (native) or http://host:8123 (HTTP); TLS with clickhouse://...?secure=true or https://. Its password is never logged.").Default("http://127.0.0.1:8123").StringVar(&c.dsn)
	cmd.Flag("clickhouse.database", "Database of seatflow's tables.").Default("seatflow").StringVar(&c.database)
	return c
}

func (c *clickhouseFlags) open(ctx context.Context) (driver.Conn, error) {
	opts, err := clickhouse.ParseDSN(c.dsn)
	if err != nil {
		return nil, fmt.Errorf("--clickhouse.dsn %q: %w", c.redacted(), err)
	}
	opts.DialTimeout = 5 * time.Second
	opts.MaxOpenConns = 4
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open ClickHouse %s: %w", c.redacted(), err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ClickHouse at %s does not answer: %w (is it running? `seatflow dev` starts a local one)", c.redacted(), redactErr(err, c.dsn))
	}
	return conn, nil
}

// redacted is the DSN with its password (user info, or a password
// query parameter) replaced, for logs and errors.
func (c *clickhouseFlags) redacted() string {
	u, err := url.Parse(c.dsn)
	if err != nil {
		return "(a DSN that does not parse)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// redactErr keeps a driver's error from repeating the DSN's password.
func redactErr(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(err.Error(), pw) {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}

const catalogHelp = "SKU catalog JSON file; default: the built-in schemas/catalog.json."

// addCatalogFlag names a catalog file; empty means the built-in one.
func addCatalogFlag(cmd *kingpin.CmdClause) *string {
	return cmd.Flag("catalog", catalogHelp).Default("").String()
}

func loadCatalog(path string) (*catalog.Catalog, error) {
	data := schemas.Catalog
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--catalog: %w", err)
		}
		data = b
	}
	c, err := catalog.Load(data)
	if err != nil {
		return nil, fmt.Errorf("--catalog %s: %w", path, err)
	}
	return c, nil
}
