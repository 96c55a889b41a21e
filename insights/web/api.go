package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/seatflow/seatflow/insights/access"
	"github.com/seatflow/seatflow/insights/store"
)

// notFound is the answer for a tenant outside the caller's portfolio, the
// same as for one that does not exist.
const notFound = "no such customer"

func (s *Server) apiCustomers(w http.ResponseWriter, r *http.Request, g access.Grant) {
	sc, err := scopeOf(r, g)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cs, err := s.store.Customers(r.Context(), sc)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, map[string]any{"customers": cs})
}

func (s *Server) apiCustomer(w http.ResponseWriter, r *http.Request, g access.Grant) {
	sc, err := scopeOf(r, g)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, to, err := s.dates(r.Context(), r, sc, false, 90)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in, found, err := s.store.Customer(r.Context(), sc, r.PathValue("tenant_id"), from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, notFound)
		return
	}
	writeJSON(w, in)
}

func (s *Server) apiPortfolio(w http.ResponseWriter, r *http.Request, g access.Grant) {
	sc, err := scopeOf(r, g)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, to, err := s.dates(r.Context(), r, sc, false, 30)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.store.Portfolio(r.Context(), sc, from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, p)
}

func (s *Server) exportDeployment(w http.ResponseWriter, r *http.Request, g access.Grant) {
	s.export(w, r, g, "deployment", store.DeploymentColumns, s.store.ExportDeployment)
}

func (s *Server) exportUsage(w http.ResponseWriter, r *http.Request, g access.Grant) {
	s.export(w, r, g, "usage", store.UsageColumns, s.store.ExportUsage)
}

// export streams rows as CSV (with a header line) or as a JSON array of
// objects, flushing as it goes: an export is never held in memory.
func (s *Server) export(w http.ResponseWriter, r *http.Request, g access.Grant, name string, columns []string,
	rows func(ctx context.Context, sc store.Scope, from, to time.Time, each func(store.ExportRow) error) error) {
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "json" {
		s.fail(w, r, badf("format: %q; want csv or json", format))
		return
	}
	sc, err := scopeOf(r, g)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, to, err := s.dates(r.Context(), r, sc, true, 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	file := fmt.Sprintf("seatflow-%s-%s-%s.%s", name, from.Format(dayLayout), to.Format(dayLayout), format)
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	flusher, _ := w.(http.Flusher)
	n := 0
	flushEvery := func() {
		if n++; n%1000 == 0 && flusher != nil {
			flusher.Flush()
		}
	}
	switch format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		cw.Write(columns)
		record := make([]string, len(columns))
		err = rows(r.Context(), sc, from, to, func(row store.ExportRow) error {
			for i, v := range row {
				record[i] = csvValue(v)
			}
			flushEvery()
			return cw.Write(record)
		})
		cw.Flush()
	case "json":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("["))
		obj := make(map[string]any, len(columns))
		err = rows(r.Context(), sc, from, to, func(row store.ExportRow) error {
			for i, v := range row {
				obj[columns[i]] = v
			}
			b, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			if n > 0 {
				w.Write([]byte(",\n"))
			} else {
				w.Write([]byte("\n"))
			}
			flushEvery()
			_, err = w.Write(b)
			return err
		})
		w.Write([]byte("\n]\n"))
	}
	if err != nil {
		// the status is sent: the log says, and the client sees a cut file
		s.log.Error("export cut short", "path", r.URL.Path, "rows", n, "err", err)
	}
}

func csvValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		if x {
			return "1"
		}
		return "0"
	case *float64:
		if x == nil {
			return ""
		}
		return strconv.FormatFloat(*x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
