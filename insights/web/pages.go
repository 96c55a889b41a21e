package web

import (
	"bytes"
	"cmp"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/seatflow/seatflow/insights/access"
	"github.com/seatflow/seatflow/insights/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"pct":    formatPct,
	"count":  formatCount,
	"change": formatChange,
	"over":   func(p *float64) bool { return p != nil && *p > 100 },
	"low":    func(p *float64) bool { return p != nil && *p < 60 },
	"list":   func(s ...string) []string { return s },
	// sortQuery keeps the page's parameters and sorts by col, turning
	// the direction when col is already the order
	"sortQuery": func(v portfolioView, col string) template.URL {
		q := url.Values{}
		for k, vs := range v.Query {
			q[k] = vs
		}
		dir := "asc"
		if v.Sort == col && v.Dir == "asc" {
			dir = "desc"
		}
		q.Set("sort", col)
		q.Set("dir", dir)
		return template.URL(q.Encode()) // encoded here: the template would escape '&' and '=' again
	},
}).ParseFS(templateFiles, "templates/*.html"))

// render writes a page; one that fails to render is an empty 500, logged.
func (s *Server) render(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "the page cannot be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

// pageFail shows a parameter error on a page, or the server error.
func (s *Server) pageFail(w http.ResponseWriter, r *http.Request, g access.Grant, err error) {
	status, msg := http.StatusInternalServerError, "The figures cannot be read right now; try again later."
	if br, ok := err.(badRequest); ok {
		status, msg = http.StatusBadRequest, br.msg
	} else {
		s.log.Error("insights page failed", "path", r.URL.Path, "err", err)
	}
	w.WriteHeader(status)
	s.render(w, "error.html", errorView{Grant: g, Message: msg})
}

type errorView struct {
	Grant   access.Grant
	Message string
}

// portfolioView is the Analyze page.
type portfolioView struct {
	Grant       access.Grant
	Partner     string // the portfolio's, or "" for every partner's
	Range       int
	Ranges      []int
	From, To    string
	NeedHelp    []store.Customer
	Customers   []store.Customer
	Total       int
	SKUs        []string
	SKU         string
	MaxDeploy   string
	MaxUsage    string
	Sort, Dir   string
	Charts      []chart
	Query       url.Values   // the page's parameters, for links that keep them
	ExportQuery template.URL // from, to and partner, for the export links, encoded
}

// sortable columns of the customers table and how they order
var customerOrder = map[string]func(a, b store.Customer) int{
	"need":     store.Need,
	"customer": func(a, b store.Customer) int { return strings.Compare(a.TenantID, b.TenantID) },
	"sold":     func(a, b store.Customer) int { return cmp.Compare(a.Sold, b.Sold) },
	"assigned": func(a, b store.Customer) int { return cmp.Compare(a.Assigned, b.Assigned) },
	"deployment": func(a, b store.Customer) int {
		return cmp.Compare(orLow(a.DeploymentPct), orLow(b.DeploymentPct))
	},
	"active": func(a, b store.Customer) int { return cmp.Compare(a.Active, b.Active) },
	"usage":  func(a, b store.Customer) int { return cmp.Compare(orLow(a.UsagePct), orLow(b.UsagePct)) },
	"change": func(a, b store.Customer) int { return cmp.Compare(orLow(a.UsageChange), orLow(b.UsageChange)) },
}

func orLow(p *float64) float64 {
	if p == nil {
		return -1e18
	}
	return *p
}

func (s *Server) portfolioPage(w http.ResponseWriter, r *http.Request, g access.Grant) {
	sc, err := scopeOf(r, g)
	if err != nil {
		s.pageFail(w, r, g, err)
		return
	}
	q := r.URL.Query()
	v := portfolioView{Grant: g, Partner: sc.Partner, Ranges: []int{30, 90, 365}, SKU: q.Get("sku"), MaxDeploy: q.Get("max_deployment"),
		MaxUsage: q.Get("max_usage"), Sort: cmp.Or(q.Get("sort"), "need"), Dir: cmp.Or(q.Get("dir"), "asc"), Query: q}
	if v.Range, err = rangeDays(r, 30); err != nil {
		s.pageFail(w, r, g, err)
		return
	}
	order, ok := customerOrder[v.Sort]
	if !ok || v.Dir != "asc" && v.Dir != "desc" {
		s.pageFail(w, r, g, badf("sort: %q %q; want one of need, customer, sold, assigned, deployment, active, usage, change, and dir asc or desc", v.Sort, v.Dir))
		return
	}
	maxDeploy, err := threshold("max_deployment", v.MaxDeploy)
	if err == nil {
		var maxUsage float64
		if maxUsage, err = threshold("max_usage", v.MaxUsage); err == nil {
			err = s.fillPortfolio(r, sc, &v, order, maxDeploy, maxUsage)
		}
	}
	if err != nil {
		s.pageFail(w, r, g, err)
		return
	}
	s.render(w, "portfolio.html", v)
}

// threshold reads a percentage filter: empty is no filter.
func threshold(name, v string) (float64, error) {
	if v == "" {
		return 1e18, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, badf("%s: %q; want a percentage, e.g. 80", name, v)
	}
	return f, nil
}

func (s *Server) fillPortfolio(r *http.Request, sc store.Scope, v *portfolioView, order func(a, b store.Customer) int, maxDeploy, maxUsage float64) error {
	ctx := r.Context()
	to, err := s.store.LatestDay(ctx, sc)
	if err != nil {
		return err
	}
	from := to.AddDate(0, 0, -(v.Range - 1))
	v.From, v.To = from.Format(dayLayout), to.Format(dayLayout)
	p, err := s.store.Portfolio(ctx, sc, from, to)
	if err != nil {
		return err
	}
	v.Charts = []chart{
		newChart("Deployment % by SKU (assigned / sold)", p.DeploymentBySKU, true),
		newChart("Usage % by SKU (active in 28 days / qualified)", p.UsageBySKU, true),
		newChart("Usage % by workload", p.UsageByWorkload, true),
	}
	cs, err := s.store.Customers(ctx, sc)
	if err != nil {
		return err
	}
	v.Total = len(cs)
	v.NeedHelp = cs[:min(5, len(cs))]
	for _, c := range cs {
		for _, k := range c.SKUs {
			if !slices.Contains(v.SKUs, k) {
				v.SKUs = append(v.SKUs, k)
			}
		}
		if v.SKU != "" && !slices.Contains(c.SKUs, v.SKU) || c.DeploymentPct != nil && *c.DeploymentPct > maxDeploy || c.UsagePct != nil && *c.UsagePct > maxUsage {
			continue
		}
		v.Customers = append(v.Customers, c)
	}
	slices.Sort(v.SKUs)
	slices.SortStableFunc(v.Customers, func(a, b store.Customer) int {
		if v.Dir == "desc" {
			return order(b, a)
		}
		return order(a, b)
	})
	eq := url.Values{"from": {v.From}, "to": {v.To}}
	if sc.All && sc.Partner != "" {
		eq.Set("partner", sc.Partner)
	}
	v.ExportQuery = template.URL(eq.Encode())
	return nil
}

// customerView is the Customer insights page.
type customerView struct {
	Grant  access.Grant
	Range  int
	Ranges []int
	In     store.Insights
	SKUs   []skuView
	Usage  chart // tenant-wide active users per workload
}

type skuView struct {
	store.SKU
	Counts, Deployment, Usage chart
	DeploymentPct, UsagePct   *float64 // the newest day's
	Active                    int64
}

func (s *Server) customerPage(w http.ResponseWriter, r *http.Request, g access.Grant) {
	sc, err := scopeOf(r, g)
	if err != nil {
		s.pageFail(w, r, g, err)
		return
	}
	v := customerView{Grant: g, Ranges: []int{30, 90, 365}}
	if v.Range, err = rangeDays(r, 90); err != nil {
		s.pageFail(w, r, g, err)
		return
	}
	to, err := s.store.LatestDay(r.Context(), sc)
	if err != nil {
		s.pageFail(w, r, g, err)
		return
	}
	in, found, err := s.store.Customer(r.Context(), sc, r.PathValue("tenant_id"), to.AddDate(0, 0, -(v.Range-1)), to)
	if err != nil {
		s.pageFail(w, r, g, err)
		return
	}
	if !found {
		w.WriteHeader(http.StatusNotFound)
		s.render(w, "error.html", errorView{Grant: g, Message: "No such customer."})
		return
	}
	v.In = in
	for _, k := range in.SKUs {
		sv := skuView{SKU: k, DeploymentPct: k.Latest.DeploymentPct}
		var sold, trial, assigned, qualified, dpct store.Series
		sold.Name, trial.Name, assigned.Name, qualified.Name, dpct.Name = "sold", "trial", "assigned", "qualified", "deployment %"
		for _, d := range k.Deployment {
			sold.Points = append(sold.Points, store.Point{Date: d.Date, Num: d.Sold})
			trial.Points = append(trial.Points, store.Point{Date: d.Date, Num: d.Trial})
			assigned.Points = append(assigned.Points, store.Point{Date: d.Date, Num: d.Assigned})
			qualified.Points = append(qualified.Points, store.Point{Date: d.Date, Num: d.Qualified})
			dpct.Points = append(dpct.Points, store.Point{Date: d.Date, Pct: d.DeploymentPct})
		}
		sv.Counts = newChart("Seats: sold, trial, assigned, qualified", []store.Series{sold, trial, assigned, qualified}, false)
		sv.Deployment = newChart("Deployment % (assigned / sold)", []store.Series{dpct}, true)
		sv.Usage = newChart("Usage % by workload (active in 28 days / qualified)", k.Usage, true)
		for _, u := range k.Usage {
			if u.Name == "all" && len(u.Points) > 0 {
				last := u.Points[len(u.Points)-1]
				sv.UsagePct, sv.Active = last.Pct, last.Num
			}
		}
		v.SKUs = append(v.SKUs, sv)
	}
	v.Usage = newChart("Active users by workload, tenant-wide (28 days, whatever the licenses)", in.Workloads, false)
	s.render(w, "customer.html", v)
}
