package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"

	"github.com/seatflow/seatflow/insights/access"
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

// TestTokenCommandsShareServesFile: SEATFLOW_WEB_TOKENS_FILE names the
// token file for seatflow serve and for token create, list and revoke
// alike, so a token made with the portal's settings is one it reads.
func TestTokenCommandsShareServesFile(t *testing.T) {
	file := t.TempDir() + "/tokens"
	t.Setenv("SEATFLOW_WEB_TOKENS_FILE", file)
	run := func(args ...string) {
		t.Helper()
		app, runs := newApp()
		selected, err := app.Parse(args)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if err := runs[selected](context.Background()); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	run("token", "create", "--partner", "p-7", "--role", "sales_agent")
	granted, err := access.List(file)
	if err != nil || len(granted) != 1 || granted[0].Partner != "p-7" || granted[0].Role != "sales_agent" {
		t.Fatalf("token file after create: %+v (%v)", granted, err)
	}
	run("token", "revoke", "--id", granted[0].ID)
	if granted, err := access.List(file); err != nil || len(granted) != 0 {
		t.Errorf("token file after revoke: %+v (%v)", granted, err)
	}
	app := kingpin.New("seatflow", "")
	app.DefaultEnvars()
	cmd := app.Command("serve", "")
	f := addServeFlags(cmd, addClickHouseFlags(cmd))
	if _, err := app.Parse([]string{"serve"}); err != nil || f.tokens != file {
		t.Errorf("seatflow serve reads %q (%v), want %q", f.tokens, err, file)
	}
}
