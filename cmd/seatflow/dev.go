package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/insights/access"
	"github.com/seatflow/seatflow/localch/launch"
	"github.com/seatflow/seatflow/localkafka"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/runner"
)

// devCommand runs the whole product locally: the embedded Kafka-protocol
// broker and the local ClickHouse (both persisting under one data
// directory), the pipeline, and simulated telemetry feeding it.
func devCommand(app *kingpin.Application) (string, func(context.Context) error) {
	cmd := app.Command("dev", "Run everything locally: an embedded Kafka-protocol broker, the local ClickHouse (chDB engine), the pipeline and simulated telemetry, until Ctrl-C.")
	kafkaAddr := cmd.Flag("kafka.listen-address", "Address of the embedded Kafka broker.").Default("127.0.0.1:9092").String()
	partitions := cmd.Flag("kafka.partitions", "Partitions of each seatflow topic when the broker creates it.").Default("6").Int()
	chAddr := cmd.Flag("clickhouse.listen-address", "Address of the local ClickHouse's HTTP interface.").Default("127.0.0.1:8123").String()
	dataDir := cmd.Flag("data-dir", "Where the broker's logs and ClickHouse's databases live; they survive restarts.").Default(".seatflow/dev").String()
	metricsAddr := cmd.Flag("metrics.listen-address", "Address of the pipeline's /metrics, /healthz and /readyz.").Default("127.0.0.1:9464").String()
	servicesOnly := cmd.Flag("services-only", "Run only the broker and ClickHouse, no pipeline, portal or simulation.").Bool()
	webAddr := cmd.Flag("web.listen-address", "Address of the partner portal (seatflow serve).").Default("127.0.0.1:8080").String()
	sim := addSimulateFlags(cmd)
	return cmd.FullCommand(), func(ctx context.Context) error {
		if *partitions < 1 {
			return fmt.Errorf("--kafka.partitions must be at least 1, got %d", *partitions)
		}
		dir, err := filepath.Abs(*dataDir)
		if err != nil {
			return err
		}
		start := time.Now()
		broker, err := localkafka.Start(ctx, localkafka.Options{
			Addr: *kafkaAddr, DataDir: filepath.Join(dir, "kafka"),
			Topics: event.Topics, Partitions: *partitions,
		})
		if err != nil {
			return err
		}
		defer broker.Close()
		kafkaReady := time.Since(start)

		start = time.Now()
		chLog, err := os.OpenFile(filepath.Join(dir, "clickhouse.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer chLog.Close()
		ch, err := launch.Start(ctx, launch.Options{
			Addr: *chAddr, DataDir: filepath.Join(dir, "clickhouse"), Progress: os.Stderr, Log: chLog,
		})
		if err != nil {
			return fmt.Errorf("local ClickHouse: %w", err)
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ch.Stop(stopCtx)
		}()
		chReady := time.Since(start)

		fmt.Printf("Kafka (embedded broker):  %v  topics %v  (ready in %s)\n", broker.Addrs(), event.Topics, kafkaReady.Round(time.Millisecond))
		fmt.Printf("ClickHouse (local, chDB): %s  pid %d  (ready in %s)\n", ch.URL(), ch.Pid(), chReady.Round(time.Millisecond))
		fmt.Printf("Data directory:           %s\n", dir)
		if *servicesOnly {
			fmt.Println("Press Ctrl-C to stop.")
			select {
			case <-ctx.Done():
			case <-ch.Exited():
				return fmt.Errorf("local ClickHouse exited unexpectedly")
			}
			return nil
		}

		db := "seatflow"
		rf := &runFlags{
			kafka: &kafkaFlags{brokers: broker.Addrs()[0], licenseTopic: event.LicenseTopic,
				usageTopic: event.UsageTopic, deadTopic: event.DeadLetterTopic},
			ch:    &clickhouseFlags{dsn: ch.URL(), database: db},
			group: "seatflow", flush: 2 * time.Second, checkpoint: 15 * time.Second,
			lateness: time.Hour, horizon: 7 * 24 * time.Hour, userActivity: true, metricsAddr: *metricsAddr,
			limits: figures.DefaultLimits,
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		started := make(chan *runner.Runner, 1)
		done := make(chan error, 2) // the pipeline's end, and the portal's failure
		go func() {
			_, err := rf.start(ctx, log, func(r *runner.Runner) { started <- r })
			done <- err
		}()
		var r *runner.Runner
		select {
		case r = <-started:
		case err := <-done:
			return err
		}

		cfg, err := sim.config()
		if err != nil {
			return err
		}
		cat, err := loadCatalog("")
		if err != nil {
			return err
		}
		fmt.Printf("Simulating %d tenants x ~%d users, %s to %s (seed %d) into Kafka...\n",
			cfg.Tenants, cfg.Users, cfg.Start.Format("2006-01-02"), cfg.End.Format("2006-01-02"), cfg.Seed)
		p, err := newPublisher(rf.kafka)
		if err != nil {
			return err
		}
		n, err := runSimulation(ctx, cfg, cat, func(ev *event.Event) error { return p.publish(ctx, ev, ev.AppendJSON(nil)) })
		if err != nil {
			p.close()
			return err
		}
		if err := p.close(); err != nil {
			return err
		}
		fmt.Printf("published %d events\n", n)

		if err := waitCaughtUp(ctx, r, done); err != nil {
			return err
		}
		conn, err := rf.ch.open(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := printPortfolio(ctx, conn, db); err != nil {
			return err
		}
		// the portal, with demo tokens made afresh at each start
		tokens := filepath.Join(dir, "tokens")
		os.Remove(tokens)
		partnerToken, _, err := access.Create(tokens, "partner-1", access.GlobalAdmin)
		if err != nil {
			return err
		}
		analystToken, _, err := access.Create(tokens, "", access.Analyst)
		if err != nil {
			return err
		}
		sf := &serveFlags{addr: *webAddr, tokens: tokens, ch: rf.ch}
		listening := make(chan string, 1)
		go func() {
			if err := sf.serve(ctx, log, func(addr string) { listening <- addr }); err != nil {
				done <- fmt.Errorf("seatflow serve: %w", err)
			}
		}()
		var webURL string
		select {
		case addr := <-listening:
			webURL = "http://" + addr + "/"
		case err := <-done:
			return err
		}
		fmt.Printf(`
ClickHouse: %[1]s  (database %[2]s). Try:
  curl '%[1]s/?query=SELECT+*+FROM+%[2]s.portfolio_daily+FINAL+ORDER+BY+date+DESC+LIMIT+10+FORMAT+PrettyCompact'
  curl '%[1]s/?query=SELECT+workload,active_users+FROM+%[2]s.workload_daily+FINAL+WHERE+tenant_id=%%27tenant-0000%%27+ORDER+BY+date+DESC,workload+LIMIT+8+FORMAT+PrettyCompact'
Metrics:    http://%[3]s/metrics   (health: /healthz, /readyz)
Partner portal: %[4]s
  log in as partner-1 (global_admin) with   %[5]s
  or as an analyst (every partner) with     %[6]s
  curl -H 'Authorization: Bearer %[5]s' %[4]sapi/v1/customers
The pipeline keeps running; publish more with 'seatflow simulate' or 'seatflow produce FILE'. Press Ctrl-C to stop.
`, ch.URL(), db, *metricsAddr, webURL, partnerToken, analystToken)
		select {
		case <-ctx.Done():
			fmt.Println("stopping...")
			return <-done
		case err := <-done:
			return err
		case <-ch.Exited():
			return fmt.Errorf("local ClickHouse exited unexpectedly")
		}
	}
}

// waitCaughtUp prints a live progress line until the pipeline has read
// everything and flushed after that.
func waitCaughtUp(ctx context.Context, r *runner.Runner, done <-chan error) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	caughtAt := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			if err == nil {
				err = fmt.Errorf("pipeline stopped")
			}
			return err
		case <-t.C:
		}
		processed, lag, flushes := r.Progress()
		fmt.Fprintf(os.Stderr, "\rpipeline: %d events processed, lag %d, %d flushes   ", processed, lag, flushes)
		if lag == 0 && processed > 0 && caughtAt < 0 {
			caughtAt = flushes
		}
		if caughtAt >= 0 && flushes > caughtAt+1 {
			fmt.Fprintln(os.Stderr)
			return nil
		}
	}
}

// printPortfolio prints, per tenant and SKU, the newest day's figures.
func printPortfolio(ctx context.Context, conn driver.Conn, db string) error {
	rows, err := conn.Query(ctx, `
		SELECT d.tenant_id, d.sku, d.date, d.sold, d.assigned, d.deployment_pct, u.active_users, u.usage_pct
		FROM `+db+`.deployment_daily AS d FINAL
		LEFT JOIN (SELECT tenant_id, sku, date, active_users, usage_pct FROM `+db+`.usage_daily FINAL WHERE workload = 'all') AS u
			ON u.tenant_id = d.tenant_id AND u.sku = d.sku AND u.date = d.date
		WHERE d.date = (SELECT max(date) FROM `+db+`.deployment_daily)
		ORDER BY d.tenant_id, d.sku`)
	if err != nil {
		return fmt.Errorf("portfolio summary: %w", err)
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	first := true
	pct := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", *p)
	}
	for rows.Next() {
		var (
			tenant, sku    string
			day            time.Time
			sold, assigned uint64
			dpct, upct     *float64
			active         uint64
		)
		if err := rows.Scan(&tenant, &sku, &day, &sold, &assigned, &dpct, &active, &upct); err != nil {
			return err
		}
		if first {
			fmt.Printf("\nPortfolio on %s (per tenant and SKU):\n", day.Format("2006-01-02"))
			fmt.Fprintln(tw, "tenant\tsku\tsold\tassigned\tdeployment\tactive 28d\tusage\t")
			first = false
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%s\t\n", tenant, sku, sold, assigned, pct(dpct), active, pct(upct))
	}
	if first {
		fmt.Println("\nno figures yet")
	}
	tw.Flush()
	return rows.Err()
}
