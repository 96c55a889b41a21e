package main

import (
	"context"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

// TestRunRejectsBadFlags: bad values stop `run` before it connects to
// anything, with a message naming the flag to fix.
func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--flush-interval", "0s"}, "--flush-interval (0s) must be positive"},
		{[]string{"--flush-interval", "2m", "--checkpoint-interval", "1m"}, "at most --checkpoint-interval (1m0s)"},
		{[]string{"--max-skew=-1h"}, "--max-skew (-1h0m0s) must not be negative"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			app := kingpin.New("seatflow", "")
			name, run := runCommand(app)
			if _, err := app.Parse(append([]string{name}, tc.args...)); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if err := run(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestSkipBatchRejectsBadFlags: skip-batch checks what it is asked to skip
// before it connects to anything.
func TestSkipBatchRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not an input topic", []string{"--topic", "seatflow.dead-letter", "--partition", "0", "--offset", "5"}, `--topic "seatflow.dead-letter" is neither --kafka.license-topic`},
		{"range backwards", []string{"--topic", "seatflow.usage-events", "--partition", "0", "--offset", "5", "--to", "4"}, "--to (4) is before --offset (5)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := kingpin.New("seatflow", "")
			name, run := skipBatchCommand(app)
			if _, err := app.Parse(append([]string{name}, tc.args...)); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if err := run(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	app := kingpin.New("seatflow", "")
	name, _ := skipBatchCommand(app)
	if _, err := app.Parse([]string{name, "--partition", "0", "--offset", "5"}); err == nil || !strings.Contains(err.Error(), "--topic") {
		t.Errorf("without --topic: %v, want a parse error naming it", err)
	}
}
