// Command bench measures seatflow on this machine and writes the figures to
// bench/results.json: core speed, heap per tracked user, restart time, end
// to end throughput through the dev broker and the local ClickHouse, and the
// same work done "the SQL way" on the same engine. Sizes are flags; seeds
// are fixed, so runs are comparable. `make bench` runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/schemas"
)

// Result is one measured figure.
type Result struct {
	Name   string  `json:"name"`
	Size   int     `json:"size,omitempty"` // events or users, as Unit says
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"`
	Note   string  `json:"note,omitempty"`
}

// Report is bench/results.json.
type Report struct {
	When    time.Time `json:"when"`
	Machine string    `json:"machine"`
	Results []Result  `json:"results"`
}

func main() {
	users := flag.String("users", "1000000,3000000,10000000", "tracked-user sizes for the memory and restart figures")
	events := flag.String("events", "1000000,3000000,10000000", "event counts for the end-to-end figures")
	e2eRounds := flag.Int("e2e-rounds", 3, "runs of each end-to-end figure; it reports the median, best and worst")
	core := flag.Int("core-events", 5_000_000, "usage events for the core figure, over all its rounds")
	coreRounds := flag.Int("core-rounds", 5, "rounds of the core figure; it reports the best, median and worst")
	sqlDays := flag.Int("sql-days", 35, "days of events for the SQL-way comparison")
	sqlTenants := flag.String("sql-tenants", "200,1000", "tenant counts (120 users each) for the SQL-way comparison")
	out := flag.String("out", "bench/results.json", "where to write the figures")
	svg := flag.String("chart", "bench/chart.svg", "where to draw throughput and memory against size")
	replicaEvents := flag.String("replica-events", "3000000", "event counts for the figures of 1, 2 and 3 replicas and of a handoff")
	only := flag.String("only", "core,memory,restart,e2e,replicas,sql", "which parts to run")
	replot := flag.String("replot", "", "only print the table and draw the chart from this results file")
	readme := flag.String("readme", "README.md", "whose table between <!-- bench --> markers to replace with this run's")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	runProfile := flag.String("run-cpuprofile", "", "write a CPU profile of each end-to-end `seatflow run` to this file, suffixed with the size")
	flag.Parse()
	if *coreRounds < 1 {
		fail(fmt.Errorf("-core-rounds must be at least 1, got %d", *coreRounds))
	}
	if *e2eRounds < 1 {
		fail(fmt.Errorf("-e2e-rounds must be at least 1, got %d", *e2eRounds))
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *replot != "" {
		var rep Report
		b, err := os.ReadFile(*replot)
		if err == nil {
			err = json.Unmarshal(b, &rep)
		}
		if err == nil {
			printTable(rep)
			err = chart(rep, *svg)
		}
		if err == nil {
			err = writeMarkdown(rep, *readme)
		}
		if err != nil {
			fail(err)
		}
		return
	}
	cat, err := catalog.Load(schemas.Catalog)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	rep := Report{When: time.Now().UTC(), Machine: machine()}
	add := func(rs ...Result) {
		for _, r := range rs {
			fmt.Fprintf(os.Stderr, "  %-34s %12.1f %s\n", label(r), r.Value, r.Unit)
		}
		rep.Results = append(rep.Results, rs...)
	}
	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	if parts["core"] {
		fmt.Fprintln(os.Stderr, "core: decode + apply of usage events on one core")
		add(coreSpeed(cat, *core, *coreRounds))
	}
	if parts["memory"] {
		fmt.Fprintln(os.Stderr, "memory: heap bytes per tracked user")
		for _, n := range ints(*users) {
			add(heapPerUser(cat, n))
		}
	}
	// each runs a part at every size of a -flag list
	each := func(part, title, sizes string, run func(n int) ([]Result, error)) {
		if !parts[part] {
			return
		}
		fmt.Fprintln(os.Stderr, title)
		for _, n := range ints(sizes) {
			rs, err := run(n)
			if err != nil {
				fail(err)
			}
			add(rs...)
		}
	}
	each("restart", "restart: checkpoint read from ClickHouse and restored", *users,
		func(n int) ([]Result, error) { return restart(ctx, cat, n) })
	each("e2e", "end to end: dev broker -> seatflow run --drain -> local ClickHouse", *events,
		func(n int) ([]Result, error) { return endToEnd(ctx, n, *e2eRounds, *runProfile) })
	each("replicas", "replicas: 1, 2 and 3 `seatflow run` in one group, and a handoff after kill -9", *replicaEvents,
		func(n int) ([]Result, error) { return replicaScaling(ctx, n) })
	each("sql", "the SQL way, same data and engine", *sqlTenants,
		func(n int) ([]Result, error) { return sqlWay(ctx, cat, n, *sqlDays) })
	printTable(rep)
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fail(err)
	}
	if err := chart(rep, *svg); err != nil {
		fail(err)
	}
	if err := writeMarkdown(rep, *readme); err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s, %s and the table in %s\n", *out, *svg, *readme)
}

func label(r Result) string {
	if r.Size > 0 {
		return fmt.Sprintf("%s @ %s", r.Name, human(r.Size))
	}
	return r.Name
}

func human(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func printTable(rep Report) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "figure\tvalue\tunit\ttarget\tnote\n")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\n", label(r), r.Value, r.Unit, r.Target, r.Note)
	}
	tw.Flush()
	fmt.Printf("machine: %s\n", rep.Machine)
}

// writeMarkdown puts rep's table between the file's <!-- bench --> and
// <!-- /bench --> markers: the README shows the latest run only, each
// figure at its largest size (results.json has every size).
func writeMarkdown(rep Report, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const begin, end = "<!-- bench -->\n", "<!-- /bench -->"
	i, j := bytes.Index(b, []byte(begin)), bytes.Index(b, []byte(end))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q markers for the table", path, strings.TrimSpace(begin), end)
	}
	var t strings.Builder
	fmt.Fprintf(&t, "| figure | value | target |\n|---|---|---|\n")
	largest := map[string]int{}
	for _, r := range rep.Results {
		largest[r.Name] = max(largest[r.Name], r.Size)
	}
	for _, r := range rep.Results {
		if r.Size == largest[r.Name] {
			fmt.Fprintf(&t, "| %s | %.1f %s | %s |\n", label(r), r.Value, r.Unit, r.Target)
		}
	}
	fmt.Fprintf(&t, "\n%s, %s.\n", rep.When.Format("2006-01-02"), rep.Machine)
	out := append(append(append([]byte(nil), b[:i+len(begin)]...), t.String()...), b[j:]...)
	return os.WriteFile(path, out, 0o644)
}

func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s %s/%s", model, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
