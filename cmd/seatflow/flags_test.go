package main

import (
	"errors"
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
