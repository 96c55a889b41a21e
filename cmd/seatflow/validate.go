package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/seatflow/seatflow/pipeline/event"
)

func validateCommand(app *kingpin.Application) (string, func(context.Context) error) {
	cmd := app.Command("validate", "Check a JSONL file of events (one per line) against the event contract; errors give line numbers.")
	file := cmd.Arg("file", "JSONL file; - for standard input.").Required().String()
	return cmd.FullCommand(), func(ctx context.Context) error {
		bad, total, err := eachLine(*file, func(int, []byte, *event.Event) error { return nil }, os.Stdout)
		if err != nil {
			return err
		}
		if bad > 0 {
			return fmt.Errorf("%d of %d events are invalid", bad, total)
		}
		fmt.Printf("%d events, all valid\n", total)
		return nil
	}
}

// eachLine decodes every line of file, printing errors with line numbers
// to report, and calls fn with each valid event.
func eachLine(file string, fn func(line int, raw []byte, ev *event.Event) error, report io.Writer) (bad, total int, err error) {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var dec event.Decoder
	var ev event.Event
	now := time.Now().UnixNano()
	for line := 1; sc.Scan(); line++ {
		raw := sc.Bytes()
		if len(raw) == 0 {
			continue
		}
		total++
		if rej := dec.Decode(raw, now, &ev); rej != nil {
			bad++
			fmt.Fprintf(report, "%s:%d: %s: %s\n", file, line, rej.Reason, rej.Detail)
			continue
		}
		if err := fn(line, raw, &ev); err != nil {
			return bad, total, err
		}
	}
	if err := sc.Err(); err != nil {
		return bad, total, fmt.Errorf("read %s: %w", file, err)
	}
	return bad, total, nil
}
