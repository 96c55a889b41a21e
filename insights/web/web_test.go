package web_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/insights/access"
	"github.com/seatflow/seatflow/insights/store"
	"github.com/seatflow/seatflow/insights/web"
	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/schemas"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// portal is a real server over the local ClickHouse, holding the rows
// the figure core makes of testenv.PortfolioEvents, and a token per role.
type portal struct {
	srv    *httptest.Server
	conn   driver.Conn
	db     string
	tokens map[string]string // "partner-1/sales_agent", "analyst", ... → token
	file   string
	log    *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startPortal(t *testing.T) *portal {
	t.Helper()
	env := testenv.StartClickHouse(t)
	conn := env.Open(t)
	ctx := context.Background()
	if _, err := clickhouse.Migrate(ctx, conn, env.Database); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load(schemas.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	e, err := figures.New(figures.Config{Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	e.SetSources(0)
	w := clickhouse.NewWriter(conn, env.Database)
	version := uint64(1)
	flush := func() { // each flush is written on its own, as the runner does
		if err := w.Write(ctx, e.Emit(version), fmt.Sprintf("portal/%d", version)); err != nil {
			t.Fatal(err)
		}
		version++
	}
	for _, ev := range testenv.PortfolioEvents() {
		_, rej, err := e.Apply(0, &ev)
		if errors.Is(err, figures.ErrAhead) { // the engine's days are full: flush
			flush()
			_, rej, err = e.Apply(0, &ev)
		}
		if err != nil || rej != nil {
			t.Fatalf("apply %+v: %v %v", ev, err, rej)
		}
	}
	flush()

	p := &portal{conn: conn, db: env.Database, tokens: map[string]string{}, file: filepath.Join(t.TempDir(), "tokens"), log: &lockedBuffer{}}
	for _, role := range access.Roles {
		partner := "partner-1"
		if role == access.Analyst {
			partner = ""
		}
		tok, _, err := access.Create(p.file, partner, role)
		if err != nil {
			t.Fatal(err)
		}
		p.tokens[role] = tok
	}
	tok, _, _ := access.Create(p.file, "partner-2", access.SalesAgent)
	p.tokens["partner-2"] = tok
	tokens, err := access.Open(p.file)
	if err != nil {
		t.Fatal(err)
	}
	s := web.New(store.New(conn, env.Database), tokens, slog.New(slog.NewTextHandler(p.log, nil)))
	p.srv = httptest.NewServer(s.Handler())
	t.Cleanup(p.srv.Close)
	return p
}

// get asks for path with token (none when empty) and returns the status
// and body.
func (p *portal) get(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", p.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func customerIDs(t *testing.T, body string) []string {
	t.Helper()
	var out struct{ Customers []store.Customer }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var ids []string
	for _, c := range out.Customers {
		ids = append(ids, c.TenantID)
	}
	slices.Sort(ids)
	return ids
}

var endpoints = []string{
	"/api/v1/customers", "/api/v1/customers/tenant-a", "/api/v1/portfolio?from=2026-10-01&to=2026-11-09",
	"/api/v1/export/deployment?format=csv&from=2026-10-01&to=2026-11-09", "/api/v1/export/usage?format=json&from=2026-10-01&to=2026-11-09",
}

func TestAPIAccess(t *testing.T) {
	p := startPortal(t)
	t.Run("no token", func(t *testing.T) {
		for _, e := range endpoints {
			if code, body := p.get(t, e, ""); code != http.StatusUnauthorized || !strings.Contains(body, "token") {
				t.Errorf("%s without a token: %d %s", e, code, body)
			}
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		for _, e := range endpoints {
			if code, _ := p.get(t, e, p.tokens[access.SalesAgent]+"x"); code != http.StatusUnauthorized {
				t.Errorf("%s with a wrong token: %d", e, code)
			}
		}
	})
	for _, role := range access.Roles {
		t.Run(role, func(t *testing.T) {
			for _, e := range endpoints {
				if code, body := p.get(t, e, p.tokens[role]); code != http.StatusOK {
					t.Errorf("%s: %d %s", e, code, body)
				}
			}
			_, body := p.get(t, "/api/v1/customers", p.tokens[role])
			want := []string{"tenant-a", "tenant-b", "tenant-over"}
			if role == access.Analyst {
				want = []string{"tenant-a", "tenant-b", "tenant-c", "tenant-over"}
			}
			if got := customerIDs(t, body); !slices.Equal(got, want) {
				t.Errorf("customers %v, want %v", got, want)
			}
		})
	}
	t.Run("figures of the customers", func(t *testing.T) {
		_, body := p.get(t, "/api/v1/customers", p.tokens[access.SalesAgent])
		var out struct{ Customers []store.Customer }
		json.Unmarshal([]byte(body), &out)
		for _, c := range out.Customers {
			if c.TenantID == "tenant-a" && (c.Sold != 10 || c.Assigned != 8 || c.Active != 6 || c.UsagePct == nil || *c.UsagePct != 75 ||
				c.UsageChange == nil || *c.UsageChange != 0 || c.Date != "2026-11-09") {
				t.Errorf("tenant-a: %+v", c)
			}
		}
	})
	t.Run("analyst picks a partner", func(t *testing.T) {
		_, body := p.get(t, "/api/v1/customers?partner=partner-2", p.tokens[access.Analyst])
		if got := customerIDs(t, body); !slices.Equal(got, []string{"tenant-b", "tenant-c"}) {
			t.Errorf("partner-2's customers: %v", got)
		}
	})
	t.Run("another partner's tenant", func(t *testing.T) {
		tok := p.tokens[access.GlobalAdmin]
		codeC, bodyC := p.get(t, "/api/v1/customers/tenant-c", tok)
		codeX, bodyX := p.get(t, "/api/v1/customers/tenant-nobody", tok)
		if codeC != http.StatusNotFound || codeC != codeX || bodyC != bodyX {
			t.Errorf("another partner's tenant: %d %q; a tenant that does not exist: %d %q; want the same 404", codeC, bodyC, codeX, bodyX)
		}
		if code, _ := p.get(t, "/api/v1/customers/tenant-c", p.tokens["partner-2"]); code != http.StatusOK {
			t.Errorf("partner-2 on its own customer: %d", code)
		}
		// the export holds no row of it either
		_, csvBody := p.get(t, "/api/v1/export/usage?format=csv&from=2026-10-01&to=2026-11-09", tok)
		if strings.Contains(csvBody, "tenant-c") {
			t.Error("partner-1's export holds tenant-c")
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		tok := p.tokens[access.SalesAgent]
		for _, c := range []struct{ path, want string }{
			{"/api/v1/portfolio?from=2026-13-01", `from: \"2026-13-01\" is not a day as YYYY-MM-DD`},
			{"/api/v1/portfolio?from=2026-11-02&to=2026-11-01", "from (2026-11-02) is after to (2026-11-01)"},
			{"/api/v1/portfolio?from=1960-01-01", "outside the years 1970-2105"},
			{"/api/v1/portfolio?from=1990-01-01&to=2026-01-01", "more than 3660 days"},
			{"/api/v1/customers/tenant-a?to=yesterday", `to: \"yesterday\"`},
			{"/api/v1/export/deployment?format=xml&from=2026-10-01&to=2026-10-02", `format: \"xml\"; want csv or json`},
			{"/api/v1/export/deployment?format=csv&to=2026-10-02", "from is required"},
			{"/api/v1/export/usage?format=json&from=2026-10-01", "to is required"},
			{"/api/v1/customers?partner=partner-2", "only an analyst's token may choose the partner"},
		} {
			if code, body := p.get(t, c.path, tok); code != http.StatusBadRequest || !strings.Contains(body, c.want) {
				t.Errorf("%s: %d %s, want 400 saying %q", c.path, code, body, c.want)
			}
		}
	})
	t.Run("revoked", func(t *testing.T) {
		gs, _ := access.List(p.file)
		for _, g := range gs {
			if g.Role == access.UserAdmin {
				if err := access.Revoke(p.file, g.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		if code, _ := p.get(t, "/api/v1/customers", p.tokens[access.UserAdmin]); code != http.StatusUnauthorized {
			t.Errorf("a revoked token: %d, want 401", code)
		}
	})
	t.Run("access log", func(t *testing.T) {
		log := p.log.String()
		for _, tok := range p.tokens {
			if strings.Contains(log, tok) || strings.Contains(log, tok[4:20]) {
				t.Fatal("the access log holds a token")
			}
		}
		if !strings.Contains(log, "path=/api/v1/customers status=200 partner=partner-1 role=global_admin") ||
			!strings.Contains(log, "path=/api/v1/portfolio status=401") {
			t.Errorf("the access log lacks partner, role, path and status:\n%s", log)
		}
	})
}

// TestExportsAreTheFinalRows: each export, CSV and JSON, is exactly the
// caller's customers' FINAL rows of its range.
func TestExportsAreTheFinalRows(t *testing.T) {
	p := startPortal(t)
	tok := p.tokens[access.SalesAgent]
	q := url.Values{"from": {"2026-10-05"}, "to": {"2026-10-20"}}
	for _, c := range []struct{ name, sql string }{
		{"deployment", "SELECT tenant_id, sku, toString(date), product, toString(sold), toString(trial), toString(assigned), toString(qualified), " +
			"ifNull(toString(deployment_pct), ''), toString(final) FROM %s.deployment_daily FINAL"},
		{"usage", "SELECT tenant_id, sku, workload, toString(date), toString(active_users), toString(qualified), ifNull(toString(usage_pct), ''), toString(final) FROM %s.usage_daily FINAL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := p.get(t, "/api/v1/export/"+c.name+"?format=csv&"+q.Encode(), tok)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			got, err := csv.NewReader(strings.NewReader(body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			want := testenv.Strings(t, p.conn, fmt.Sprintf(c.sql, p.db)+
				" WHERE tenant_id IN ('tenant-a', 'tenant-b', 'tenant-over') AND date BETWEEN '2026-10-05' AND '2026-10-20' ORDER BY ALL")
			exported := got[1:]
			slices.SortFunc(exported, func(a, b []string) int { return strings.Compare(strings.Join(a, ","), strings.Join(b, ",")) })
			slices.SortFunc(want, func(a, b []string) int { return strings.Compare(strings.Join(a, ","), strings.Join(b, ",")) })
			if len(want) == 0 || fmt.Sprint(exported) != fmt.Sprint(want) {
				t.Errorf("CSV export (%d rows) differs from the FINAL rows (%d):\n%v\n%v", len(exported), len(want), head(exported), head(want))
			}
			_, js := p.get(t, "/api/v1/export/"+c.name+"?format=json&"+q.Encode(), tok)
			var objs []map[string]any
			if err := json.Unmarshal([]byte(js), &objs); err != nil || len(objs) != len(want) {
				t.Errorf("JSON export: %d objects (%v), want %d", len(objs), err, len(want))
			}
		})
	}
}

func head(rows [][]string) [][]string { return rows[:min(3, len(rows))] }

// TestCausesOverAHundred: tenant-over's usage is over 100 % from its
// trial seats, its subscription in grace and a leaver still active.
func TestCausesOverAHundred(t *testing.T) {
	p := startPortal(t)
	code, body := p.get(t, "/api/v1/customers/tenant-over", p.tokens[access.AdminAgent])
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	var in store.Insights
	if err := json.Unmarshal([]byte(body), &in); err != nil || len(in.SKUs) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	var kinds []string
	for _, c := range in.SKUs[0].Causes {
		kinds = append(kinds, c.Kind)
	}
	for _, want := range []string{"trial", "inactive_subscription", "turnover"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("causes %v lack %s (%s)", kinds, want, body)
		}
	}
	_, body = p.get(t, "/api/v1/customers/tenant-a", p.tokens[access.AdminAgent])
	if strings.Contains(body, `"kind"`) {
		t.Errorf("tenant-a, under 100 %%, has causes: %s", body)
	}
}

// TestPagesAndLogin: the login form sets an HttpOnly, SameSite cookie;
// the pages then show the caller's customers with charts drawn, refuse
// another partner's customer as a missing one, and logout ends it.
func TestPagesAndLogin(t *testing.T) {
	p := startPortal(t)
	jar := &cookieJar{}
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(p.srv.URL + "/portfolio")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("portfolio without login: %d", resp.StatusCode)
	}
	resp, err = client.PostForm(p.srv.URL+"/login", url.Values{"token": {"nonsense"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: %d", resp.StatusCode)
	}
	resp, err = client.PostForm(p.srv.URL+"/login", url.Values{"token": {p.tokens[access.SalesAgent]}, "next": {"/portfolio?range=90"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portfolio?range=90" ||
		!strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Fatalf("login: %d to %q, cookie %q", resp.StatusCode, resp.Header.Get("Location"), cookie)
	}
	page := func(path string) (int, string) {
		resp, err := client.Get(p.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := page("/portfolio?range=90")
	if code != http.StatusOK || !strings.Contains(body, `href="/customers/tenant-a"`) || strings.Contains(body, "tenant-c") ||
		strings.Count(body, "<polyline") < 3 {
		t.Errorf("portfolio: %d, %d lines drawn\n%.2000s", code, strings.Count(body, "<polyline"), body)
	}
	if !strings.Contains(body, `href="?dir=asc&amp;range=90&amp;sort=usage"`) || !strings.Contains(body, `/api/v1/export/usage?format=json&amp;from=`) {
		t.Errorf("the portfolio's sort and export links are not plain query strings:\n%s", regexp.MustCompile(`href="[^"]*"`).FindAllString(body, -1))
	}
	code, body = page("/customers/tenant-over")
	if code != http.StatusOK || !strings.Contains(body, `data-cause="turnover"`) || strings.Count(body, "<polyline") < 4 {
		t.Errorf("customer page: %d\n%.2000s", code, body)
	}
	codeC, _ := page("/customers/tenant-c")
	codeX, _ := page("/customers/tenant-nobody")
	if codeC != http.StatusNotFound || codeX != codeC {
		t.Errorf("another partner's customer page: %d, a missing one: %d; want 404 both", codeC, codeX)
	}
	if code, body := page("/portfolio?range=7"); code != http.StatusBadRequest || !strings.Contains(body, "want 30, 90 or 365") {
		t.Errorf("range=7: %d", code)
	}
	code, body = page("/portfolio?sort=usage&dir=desc&max_usage=90")
	_, table, _ := strings.Cut(body, `id="customers"`)
	if code != http.StatusOK || strings.Contains(table, "tenant-over") || !strings.Contains(table, "tenant-a") {
		t.Errorf("usage at most 90 %% still lists tenant-over (%d)", code)
	}
	resp, err = client.PostForm(p.srv.URL+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := page("/portfolio"); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", code)
	}
}

// cookieJar keeps the one cookie the portal sets.
type cookieJar struct {
	mu      sync.Mutex
	cookies []*http.Cookie
}

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		j.cookies = slices.DeleteFunc(j.cookies, func(o *http.Cookie) bool { return o.Name == c.Name })
		if c.MaxAge >= 0 && c.Value != "" {
			j.cookies = append(j.cookies, c)
		}
	}
}

func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.cookies)
}
