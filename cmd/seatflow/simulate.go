package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/schollz/progressbar/v3"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/simulate"
)

type simulateFlags struct {
	tenants, users, days *int
	start                *string
	seed                 *uint64
}

func addSimulateFlags(cmd *kingpin.CmdClause) *simulateFlags {
	return &simulateFlags{
		tenants: cmd.Flag("tenants", "Customer tenants to simulate.").Default("20").Int(),
		users:   cmd.Flag("users", "Users per tenant, on average.").Default("50").Int(),
		days:    cmd.Flag("days", "Days of telemetry.").Default("35").Int(),
		start:   cmd.Flag("start", "First day (YYYY-MM-DD); default: days before today.").Default("").String(),
		seed:    cmd.Flag("seed", "Random seed: the same seed gives the same events.").Default("1").Uint64(),
	}
}

func (s *simulateFlags) config() (simulate.Config, error) {
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -*s.days+1)
	if *s.start != "" {
		t, err := time.Parse("2006-01-02", *s.start)
		if err != nil {
			return simulate.Config{}, fmt.Errorf("--start %q: want YYYY-MM-DD", *s.start)
		}
		start = t
	}
	if *s.tenants < 1 || *s.users < 1 || *s.days < 1 {
		return simulate.Config{}, fmt.Errorf("--tenants, --users and --days must be at least 1")
	}
	end := start.AddDate(0, 0, *s.days)
	if now := time.Now().UTC(); end.After(now) {
		end = now // no events from the future
	}
	return simulate.Config{Tenants: *s.tenants, Users: *s.users, Start: start, End: end, Seed: *s.seed}, nil
}

func simulateCommand(app *kingpin.Application) (string, func(context.Context) error) {
	cmd := app.Command("simulate", "Generate realistic telemetry: to a JSONL file (--out) or to Kafka.")
	s := addSimulateFlags(cmd)
	out := cmd.Flag("out", "Write JSONL here instead of publishing to Kafka; - for standard output.").Default("").String()
	k := addKafkaFlags(cmd)
	cat := addCatalogFlag(cmd)
	return cmd.FullCommand(), func(ctx context.Context) error {
		cfg, err := s.config()
		if err != nil {
			return err
		}
		c, err := loadCatalog(*cat)
		if err != nil {
			return err
		}
		if *out != "" {
			f := os.Stdout
			if *out != "-" {
				if f, err = os.Create(*out); err != nil {
					return err
				}
				defer f.Close()
			}
			w := bufio.NewWriterSize(f, 1<<20)
			n, err := runSimulation(ctx, cfg, c, func(ev *event.Event) error {
				_, err := w.Write(append(ev.AppendJSON(nil), '\n'))
				return err
			})
			if err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "wrote %d events to %s\n", n, *out)
			return nil
		}
		p, err := newPublisher(k)
		if err != nil {
			return err
		}
		n, err := runSimulation(ctx, cfg, c, func(ev *event.Event) error { return p.publish(ctx, ev, ev.AppendJSON(nil)) })
		if err != nil {
			p.close()
			return err
		}
		if err := p.close(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "published %d events to %s\n", n, k.brokers)
		return nil
	}
}

// runSimulation generates events with a progress bar on stderr.
func runSimulation(ctx context.Context, cfg simulate.Config, cat *catalog.Catalog, emit func(*event.Event) error) (int, error) {
	// progress in simulated time: the bar runs from the first day to the last
	span := cfg.End.Sub(cfg.Start).Nanoseconds()
	bar := progressbar.NewOptions(100,
		progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("simulating"),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetElapsedTime(false),
		progressbar.OptionSetPredictTime(false))
	n := 0
	start := cfg.Start.UnixNano()
	err := simulate.Generate(cfg, cat, func(ev *event.Event) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		n++
		if n%1000 == 0 {
			bar.Set(int(100 * (ev.OccurredAt - start) / span))
		}
		return emit(ev)
	})
	bar.Finish()
	fmt.Fprintln(os.Stderr)
	return n, err
}
