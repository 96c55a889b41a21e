// Command seatflow-chdb is seatflow's local ClickHouse: the chDB engine
// behind ClickHouse's HTTP interface. It is started by `seatflow dev`, the
// test harness and `make run`, which fetch the engine library first and
// name it in CHDB_LIB_PATH; run by hand, set CHDB_LIB_PATH yourself.
//
// It prints "listening on ADDR" on stdout once it answers queries.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seatflow/seatflow/localch"
	"github.com/seatflow/seatflow/localch/chdbengine"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seatflow-chdb:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("seatflow-chdb", flag.ContinueOnError)
	listen := fs.String("listen", envOr("SEATFLOW_CLICKHOUSE_LISTEN", "127.0.0.1:8123"), "HTTP address to serve ClickHouse's HTTP interface on (env SEATFLOW_CLICKHOUSE_LISTEN)")
	dataDir := fs.String("data-dir", envOr("SEATFLOW_CLICKHOUSE_DATA_DIR", ""), "directory holding the databases; required (env SEATFLOW_CLICKHOUSE_DATA_DIR)")
	password := fs.String("password", envOr("SEATFLOW_CLICKHOUSE_PASSWORD", ""), "password every request must carry; required to listen beyond loopback (env SEATFLOW_CLICKHOUSE_PASSWORD)")
	verbose := fs.Bool("verbose", false, "log every request")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if host, _, err := net.SplitHostPort(*listen); err != nil {
		return fmt.Errorf("--listen %q: %w (want host:port)", *listen, err)
	} else if ip := net.ParseIP(host); *password == "" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %s is beyond loopback: set --password (or SEATFLOW_CLICKHOUSE_PASSWORD), or listen on 127.0.0.1", *listen)
	}
	if *dataDir == "" {
		return errors.New("--data-dir is required: the directory where the local ClickHouse keeps its databases")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another ClickHouse running? choose another --listen)", *listen, err)
	}
	start := time.Now()
	engine, err := chdbengine.Open(filepath.Join(dir, "engine"))
	if err != nil {
		return err
	}
	defer engine.Close()
	srv, err := localch.NewServer(engine, filepath.Join(dir, "tmp"), log)
	if err != nil {
		return err
	}
	if *password != "" {
		srv.RequirePassword(*password)
	}
	log.Info("local ClickHouse ready", "engine", "chDB "+srv.Version(), "addr", ln.Addr().String(), "data_dir", dir, "startup", time.Since(start).Round(time.Millisecond))
	fmt.Printf("listening on %s\n", ln.Addr())

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("local ClickHouse stopped")
	return nil
}

// lockDir holds an exclusive lock on the data directory: the engine allows
// one process per directory, and a second one would corrupt it.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another seatflow-chdb: stop it or choose another --data-dir", dir)
	}
	return func() { f.Close() }, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
