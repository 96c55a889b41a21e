package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// deployments are the files under the repository's root that name
// seatflow's metrics or its SEATFLOW_* variables.
const (
	rulesFile     = "../../deployments/prometheus/seatflow-rules.yml"
	dashboardFile = "../../deployments/grafana/seatflow.json"
	manifestFile  = "../../deployments/kubernetes/seatflow.yaml"
	composeFile   = "../../docker-compose.yml"
)

// TestDeploymentsReadRealMetrics: every metric an alert rule or a
// dashboard panel reads is one that `seatflow run` serves, so a renamed
// metric cannot leave a rule that never fires or an empty panel.
func TestDeploymentsReadRealMetrics(t *testing.T) {
	reg, m := newRegistry()
	// vectors appear in Gather only once a label set exists
	m.Consumed.WithLabelValues("t", "usage")
	m.Rejected.WithLabelValues("r")
	m.Late.WithLabelValues("restated")
	m.Lag.WithLabelValues("t", "0")
	m.SinkRows.WithLabelValues("t")
	m.SinkErrors.WithLabelValues("t")
	m.Unknown.WithLabelValues("sku")
	m.UnitWatermark.WithLabelValues("0")
	m.CorruptBatches.WithLabelValues("t", "0")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{
		"up": true, "probe_success": true, // Prometheus's own, and the blackbox exporter's
	}
	for _, f := range families {
		served[f.GetName()] = true
	}

	var exprs []string
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	readYAML(t, rulesFile, &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Definition string }
		}
	}
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if len(dash.Panels) == 0 {
		t.Fatalf("%s has no panels", dashboardFile)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}

	metric := regexp.MustCompile(`\b(seatflow|process|go)_[a-z_]+\b|\b(up|probe_success)\{`)
	for _, e := range exprs {
		names := metric.FindAllString(e, -1)
		if len(names) == 0 && e != "" {
			t.Errorf("%q reads no metric seatflow serves", e)
		}
		for _, n := range names {
			n = strings.TrimSuffix(n, "{")
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} { // a histogram's series
				if s, ok := strings.CutSuffix(n, suffix); ok && served[s] {
					base = s
				}
			}
			if !served[base] {
				t.Errorf("%q reads %s, which `seatflow run` does not serve", e, n)
			}
		}
	}
}

// TestDeploymentsSetRealFlags: every SEATFLOW_* variable the Kubernetes
// manifest, docker-compose.yml or the README's commands set is a flag's
// variable, so a renamed flag cannot be silently ignored by a deployment.
func TestDeploymentsSetRealFlags(t *testing.T) {
	app, _ := newApp()
	if _, err := app.Parse([]string{"migrate"}); err != nil { // names the variables; runs nothing
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, c := range app.Model().Commands {
		for _, f := range c.Flags {
			known[f.Envar] = true
		}
	}
	if !known["SEATFLOW_KAFKA_BROKERS"] || !known["SEATFLOW_METRICS_LISTEN_ADDRESS"] {
		t.Fatalf("flag variables not found: %v", known)
	}
	variable := regexp.MustCompile(`\bSEATFLOW_[A-Z_]+\b`)
	for _, file := range []string{manifestFile, composeFile, "../../README.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(file, ".yml") || strings.HasSuffix(file, ".yaml") {
			dec := yaml.NewDecoder(bytes.NewReader(b))
			for {
				var doc any
				if err := dec.Decode(&doc); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
			}
		}
		for _, v := range slices.Compact(slices.Sorted(slices.Values(variable.FindAllString(string(b), -1)))) {
			if !known[v] && !strings.HasPrefix(v, "SEATFLOW_TEST_") { // the tests' own, README "Tests"
				t.Errorf("%s sets %s, which is no flag's variable", file, v)
			}
		}
	}
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
