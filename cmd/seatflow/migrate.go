package main

import (
	"context"
	"fmt"

	"github.com/alecthomas/kingpin/v2"

	"github.com/seatflow/seatflow/sinks/clickhouse"
)

func migrateCommand(app *kingpin.Application) (string, func(context.Context) error) {
	cmd := app.Command("migrate", "Apply the ClickHouse migrations (schemas/migrations) and exit.")
	ch := addClickHouseFlags(cmd)
	return cmd.FullCommand(), func(ctx context.Context) error {
		conn, err := ch.open(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		applied, err := clickhouse.Migrate(ctx, conn, ch.database)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Printf("database %s is up to date\n", ch.database)
		}
		for _, m := range applied {
			fmt.Printf("applied %s to %s\n", m, ch.database)
		}
		return nil
	}
}
