package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestDSNIsRedacted(t *testing.T) {
	cases := []struct{ name, dsn, want string }{
		{"native with a password", "clickhouse://seatflow:s3cret@ch:9000/db?secure=true", "clickhouse://seatflow:xxxxx@ch:9000/db?secure=true"},
		{"HTTP without user", "http://127.0.0.1:8123", "http://127.0.0.1:8123"},
		{"password as a parameter", "https://ch:8443?username=u&password=s3cret", "https://ch:8443?password=xxxxx&username=u"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &clickhouseFlags{dsn: c.dsn}
			if got := f.redacted(); got != c.want || strings.Contains(got, "s3cret") {
				t.Errorf("redacted %q, want %q", got, c.want)
			}
		})
	}
	err := redactErr(errors.New("dial clickhouse://seatflow:s3cret@ch:9000: refused"), "clickhouse://seatflow:s3cret@ch:9000")
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error still holds the password: %v", err)
	}
}

func TestKafkaTLSFlags(t *testing.T) {
	notPEM := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		flags   kafkaFlags
		tls     bool
		wantErr string
	}{
		{"plain", kafkaFlags{}, false, ""},
		{"TLS with the system's authorities", kafkaFlags{tls: true}, true, ""},
		{"a CA file that is missing", kafkaFlags{caFile: "/no/such/ca.pem"}, false, "--kafka.tls.ca-file"},
		{"a CA file without PEM", kafkaFlags{caFile: notPEM}, false, "no PEM certificate"},
		{"a certificate without its key", kafkaFlags{tls: true, certFile: notPEM}, false, "go together"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := c.flags.tlsConfig()
			switch {
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("error %v, want one saying %q", err, c.wantErr)
			case c.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case c.wantErr == "" && (cfg != nil) != c.tls:
				t.Errorf("TLS config %v, want TLS %v", cfg, c.tls)
			}
		})
	}
}

func TestKafkaSASLFlags(t *testing.T) {
	cases := []struct {
		name    string
		flags   kafkaFlags
		wantErr string
	}{
		{"none", kafkaFlags{}, ""},
		{"SCRAM", kafkaFlags{saslMechanism: "scram-sha-512", saslUser: "u", saslPass: "p"}, ""},
		{"an unknown mechanism", kafkaFlags{saslMechanism: "GSSAPI", saslUser: "u"}, "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"a mechanism without a user", kafkaFlags{saslMechanism: "PLAIN"}, "needs --kafka.sasl.username"},
		{"a user without a mechanism", kafkaFlags{saslUser: "u"}, "need --kafka.sasl.mechanism"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sec, err := c.flags.security()
			switch {
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("error %v, want one saying %q", err, c.wantErr)
			case c.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case c.wantErr == "" && (sec.SASL != nil) != (c.flags.saslMechanism != ""):
				t.Errorf("SASL %v for mechanism %q", sec.SASL, c.flags.saslMechanism)
			}
		})
	}
}
