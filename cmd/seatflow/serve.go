package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/seatflow/seatflow/insights/access"
	"github.com/seatflow/seatflow/insights/store"
	"github.com/seatflow/seatflow/insights/web"
)

// serveFlags say where the portal listens, what it reads and who may.
type serveFlags struct {
	addr, tokens string
	ch           *clickhouseFlags
}

func addServeFlags(cmd *kingpin.CmdClause, ch *clickhouseFlags) *serveFlags {
	f := &serveFlags{ch: ch}
	cmd.Flag("web.listen-address", "Address of the partner portal and its API.").Default("127.0.0.1:8080").StringVar(&f.addr)
	cmd.Flag("web.tokens-file", "Token file (seatflow token create): who may see which partner's customers.").Default("seatflow-tokens").StringVar(&f.tokens)
	return f
}

func serveCommand(app *kingpin.Application) (string, func(context.Context) error) {
	cmd := app.Command("serve", "Serve partners' insights: the portfolio and customer pages, the JSON API and exports, from the snapshot tables.")
	f := addServeFlags(cmd, addClickHouseFlags(cmd))
	return cmd.FullCommand(), func(ctx context.Context) error {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		return f.serve(ctx, log, func(addr string) {
			log.Info("seatflow serve", "address", "http://"+addr+"/", "clickhouse", f.ch.redacted(), "database", f.ch.database, "tokens", f.tokens)
		})
	}
}

// serve answers until ctx ends; listening, if set, hears the address once
// it listens.
func (f *serveFlags) serve(ctx context.Context, log *slog.Logger, listening func(addr string)) error {
	tokens, err := access.Open(f.tokens)
	if err != nil {
		return fmt.Errorf("--web.tokens-file: %w (make one with seatflow token create)", err)
	}
	conn, err := f.ch.open(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("--web.listen-address %s: %w", f.addr, err)
	}
	srv := &http.Server{Handler: web.New(store.New(conn, f.ch.database), tokens, log).Handler(),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	if listening != nil {
		listening(ln.Addr().String())
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-stopped
	return nil
}
