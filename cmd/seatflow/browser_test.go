package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/insights/access"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/testenv"
)

// chromium finds the browser scripts/deps.sh installs (or
// SEATFLOW_CHROMIUM names).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SEATFLOW_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium: scripts/deps.sh installs it (or set SEATFLOW_CHROMIUM)")
	return ""
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runCommand parses args as the binary does and runs the command.
func runArgsIn(ctx context.Context, args ...string) error {
	app, runs := newApp()
	name, err := app.Parse(args)
	if err != nil {
		return err
	}
	return runs[name](ctx)
}

// TestPortalInABrowser: the events of testenv.PortfolioEvents go through
// the embedded broker and `seatflow run` into the local ClickHouse, and a
// real `seatflow serve` shows them to headless Chromium: a partner logs in
// and sees exactly its customers, opens one with its charts drawn and the
// causes of its usage over 100 %, is refused another partner's customer
// by URL and by API, and downloads a CSV equal to the FINAL rows.
// SEATFLOW_SCREENSHOTS=dir keeps the pages' screenshots there (docs/
// holds the README's).
func TestPortalInABrowser(t *testing.T) {
	exe := chromium(t)
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 2})
	ch := testenv.StartClickHouse(t)
	conn := ch.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	byTopic := map[string][]kafka.Message{}
	for _, ev := range testenv.PortfolioEvents() {
		topic := k.License
		if ev.Kind == event.Usage {
			topic = k.Usage
		}
		byTopic[topic] = append(byTopic[topic], kafka.Message{Key: []byte(ev.TenantID), Value: ev.AppendJSON(nil)})
	}
	for topic, msgs := range byTopic {
		w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	dsn := ch.DSN
	if i := strings.LastIndex(dsn, "/"); i > len("http://") {
		dsn = dsn[:i] // the database is a flag of its own
	}
	chFlags := []string{"--clickhouse.dsn", dsn, "--clickhouse.database", ch.Database}
	if err := runArgsIn(ctx, append([]string{"run", "--drain", "--kafka.brokers", strings.Join(k.Brokers, ","), "--kafka.license-topic", k.License,
		"--kafka.usage-topic", k.Usage, "--kafka.dead-letter-topic", k.DeadLetter, "--kafka.group", "portal-test",
		"--flush-interval", "200ms", "--checkpoint-interval", "1s", "--metrics.listen-address", "127.0.0.1:0"}, chFlags...)...); err != nil {
		t.Fatalf("run --drain: %v", err)
	}

	tokens := filepath.Join(t.TempDir(), "tokens")
	token, _, err := access.Create(tokens, "partner-1", access.SalesAgent)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	served := make(chan error, 1)
	go func() {
		served <- runArgsIn(ctx, append([]string{"serve", "--web.listen-address", addr, "--web.tokens-file", tokens}, chFlags...)...)
	}()
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("seatflow serve did not start")
		}
	}

	downloads := t.TempDir()
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	linesDrawn := chromedp.Evaluate[int](`[...document.querySelectorAll('svg.chart polyline')].filter(l => l.getBBox().width > 0).length`)

	must(t, "open the portal", chromedp.Do(bctx, chromedp.Navigate(base+"/portfolio")))
	loginTitle := run(t, bctx, chromedp.Title())
	must(t, "log in", chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("customers")),
	))
	customers := run(t, bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#customers td:first-child a')].map(a => a.textContent)`))
	lines := run(t, bctx, linesDrawn)
	slices.Sort(customers)
	if !strings.HasPrefix(loginTitle, "Log in") || !slices.Equal(customers, []string{"tenant-a", "tenant-b", "tenant-over"}) || lines < 3 {
		t.Errorf("portfolio: first page %q; customers %v, want tenant-a, tenant-b, tenant-over; %d chart lines drawn", loginTitle, customers, lines)
	}
	screenshot(t, bctx, "portfolio.png")

	must(t, "open a customer", chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`#customers a[href="/customers/tenant-over"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-cause]`)),
	))
	causes := run(t, bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-cause]')].map(c => c.dataset.cause)`))
	for _, want := range []string{"trial", "inactive_subscription", "turnover"} {
		if !slices.Contains(causes, want) {
			t.Errorf("tenant-over's causes %v lack %s", causes, want)
		}
	}
	if lines := run(t, bctx, linesDrawn); lines < 4 {
		t.Errorf("customer page: %d chart lines drawn", lines)
	}
	screenshot(t, bctx, "customer.png")

	text := func(url, sel string) string {
		must(t, "open "+url, chromedp.Do(bctx, chromedp.Navigate(url)))
		return run(t, bctx, chromedp.Text(chromedp.CSS(sel)))
	}
	byURL := text(base+"/customers/tenant-c", "h1")
	byAPI := text(base+"/api/v1/customers/tenant-c", "body")
	missingAPI := text(base+"/api/v1/customers/tenant-nobody", "body")
	if byURL != "No such customer." || !strings.Contains(byAPI, "no such customer") || byAPI != missingAPI {
		t.Errorf("tenant-c: page %q, API %q (a missing tenant: %q)", byURL, byAPI, missingAPI)
	}

	// the export link of the portfolio page, downloaded by the browser
	exportLink := chromedp.CSS(`a[href^="/api/v1/export/deployment?format=csv"]`)
	must(t, "portfolio", chromedp.Do(bctx, chromedp.Navigate(base+"/portfolio?range=30"), chromedp.WaitVisible(exportLink)))
	href := run(t, bctx, chromedp.AttributeValue(exportLink, "href")).Value
	must(t, "download", chromedp.Do(bctx,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
			return err
		}),
		chromedp.Click(exportLink),
	))
	// the file appears under the name the server gave it once complete
	var file string
	for deadline := time.Now().Add(30 * time.Second); file == ""; time.Sleep(50 * time.Millisecond) {
		if found, _ := filepath.Glob(filepath.Join(downloads, "seatflow-deployment-*.csv")); len(found) == 1 {
			file = found[0]
		} else if time.Now().After(deadline) {
			entries, _ := os.ReadDir(downloads)
			url := run(t, bctx, chromedp.Evaluate[string](`location.href`))
			t.Fatalf("the CSV download did not complete: %v (at %s)", entries, url)
		}
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(got) < 2 {
		t.Fatalf("downloaded CSV: %v, %d lines", err, len(got))
	}
	q, _ := strings.CutPrefix(href, "/api/v1/export/deployment?format=csv&")
	from, to := queryValue(q, "from"), queryValue(q, "to")
	want := testenv.Strings(t, conn, fmt.Sprintf("SELECT tenant_id, sku, toString(date), product, toString(sold), toString(trial), toString(assigned), toString(qualified), "+
		"ifNull(toString(deployment_pct), ''), toString(final) FROM %s.deployment_daily FINAL WHERE tenant_id IN ('tenant-a', 'tenant-b', 'tenant-over') "+
		"AND date BETWEEN '%s' AND '%s' ORDER BY tenant_id, sku, date", ch.Database, from, to))
	if fmt.Sprint(got[1:]) != fmt.Sprint(want) {
		t.Errorf("downloaded CSV (%d rows, %s to %s) differs from the FINAL rows (%d)", len(got)-1, from, to, len(want))
	}
	// At a phone's width each page fits the screen: only the tables
	// scroll, inside their own boxes.
	const phone = 390
	must(t, "phone width", chromedp.Do(bctx, chromedp.EmulateViewport(phone, 844, chromedp.EmulateMobile)))
	for _, page := range []string{"/portfolio", "/customers/tenant-over"} {
		must(t, "open "+page, chromedp.Do(bctx, chromedp.Navigate(base+page), chromedp.WaitVisible(chromedp.CSS("svg.chart"))))
		width := run(t, bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		charts := run(t, bctx, chromedp.Evaluate[[]int](`[...document.querySelectorAll('svg.chart')].map(c => Math.ceil(c.getBoundingClientRect().right))`))
		if width > phone || slices.Max(charts) > phone {
			t.Errorf("%s at %d px: the page is %d px wide, its charts end at %v px", page, phone, width, charts)
		}
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func queryValue(q, name string) string {
	for _, kv := range strings.Split(q, "&") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// run runs a browser action and fails the test on its error.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// screenshot keeps the page as it looks, full length, in
// $SEATFLOW_SCREENSHOTS when set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := run(t, ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if len(png) == 0 {
		t.Errorf("empty screenshot of %s", name)
	}
	if dir := os.Getenv("SEATFLOW_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
