// Command seatflow turns license-change and product-usage events from Kafka
// into daily license deployment and usage figures in ClickHouse.
//
// One file per subcommand; every flag has a SEATFLOW_* environment variable.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
)

// command is a subcommand: it registers its flags and returns what to run.
type command func(app *kingpin.Application) (name string, run func(ctx context.Context) error)

// newApp declares every subcommand and its flags; it returns what each
// runs, by name.
func newApp() (*kingpin.Application, map[string]func(context.Context) error) {
	app := kingpin.New("seatflow", "License adoption analytics: Kafka events in, daily deployment and usage figures in ClickHouse out.")
	app.HelpFlag.Short('h')
	app.DefaultEnvars() // SEATFLOW_<FLAG>, e.g. --kafka.brokers = SEATFLOW_KAFKA_BROKERS
	runs := map[string]func(context.Context) error{}
	for _, c := range []command{runCommand, devCommand, simulateCommand, validateCommand, produceCommand, migrateCommand, skipBatchCommand, serveCommand} {
		name, run := c(app)
		runs[name] = run
	}
	for name, run := range tokenCommands(app) {
		runs[name] = run
	}
	return app, runs
}

func main() {
	app, runs := newApp()
	selected, err := app.Parse(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "seatflow: %v (see seatflow --help)\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runs[selected](ctx); err != nil {
		fmt.Fprintf(os.Stderr, "seatflow %s: %v\n", selected, err)
		os.Exit(1)
	}
}
