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
		app := kingpin.New("seatflow", "")
		name, run := runCommand(app)
		if _, err := app.Parse(append([]string{name}, tc.args...)); err != nil {
			t.Fatalf("%v: parse: %v", tc.args, err)
		}
		err := run(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
