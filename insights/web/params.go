package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/seatflow/seatflow/insights/access"
	"github.com/seatflow/seatflow/insights/store"
)

// badRequest is a parameter error: a 400 that says what to fix.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

// scopeOf is whose customers g may see: its partner's, or, for an
// analyst, every partner's or the one its partner parameter names.
func scopeOf(r *http.Request, g access.Grant) (store.Scope, error) {
	p := r.URL.Query().Get("partner")
	if g.AllPartners() {
		return store.Scope{All: true, Partner: p}, nil
	}
	if p != "" && p != g.Partner {
		return store.Scope{}, badf("partner: only an analyst's token may choose the partner; this token sees %s", g.Partner)
	}
	return store.Scope{Partner: g.Partner}, nil
}

const dayLayout = "2006-01-02"

// maxDays bounds a range of days asked for: ten years.
const maxDays = 3660

// dates reads the from and to parameters (YYYY-MM-DD, both included).
// Where one is missing and required is false, to defaults to the newest
// day with figures and from to days-1 days before it.
func (s *Server) dates(ctx context.Context, r *http.Request, sc store.Scope, required bool, days int) (from, to time.Time, err error) {
	q := r.URL.Query()
	parse := func(name string) (time.Time, bool, error) {
		v := q.Get(name)
		if v == "" {
			if required {
				return time.Time{}, false, badf("%s is required: a day as YYYY-MM-DD", name)
			}
			return time.Time{}, false, nil
		}
		d, err := time.Parse(dayLayout, v)
		if err != nil {
			return time.Time{}, false, badf("%s: %q is not a day as YYYY-MM-DD", name, v)
		}
		if d.Year() < 1970 || d.Year() > 2105 {
			return time.Time{}, false, badf("%s: %s is outside the years 1970-2105", name, v)
		}
		return d, true, nil
	}
	from, hasFrom, err := parse("from")
	if err != nil {
		return from, to, err
	}
	to, hasTo, err := parse("to")
	if err != nil {
		return from, to, err
	}
	if !hasTo {
		if to, err = s.store.LatestDay(ctx, sc); err != nil {
			return from, to, err
		}
		if hasFrom && to.Before(from) {
			to = from
		}
	}
	if !hasFrom {
		from = to.AddDate(0, 0, -(days - 1))
	}
	if from.After(to) {
		return from, to, badf("from (%s) is after to (%s)", from.Format(dayLayout), to.Format(dayLayout))
	}
	if to.Sub(from) > maxDays*24*time.Hour {
		return from, to, badf("from %s to %s is more than %d days", from.Format(dayLayout), to.Format(dayLayout), maxDays)
	}
	return from, to, nil
}

// rangeDays reads the range parameter of the pages: 30, 90 or 365 days.
func rangeDays(r *http.Request, def int) (int, error) {
	switch v := r.URL.Query().Get("range"); v {
	case "":
		return def, nil
	case "30", "90", "365":
		var n int
		fmt.Sscan(v, &n)
		return n, nil
	default:
		return 0, badf("range: %q; want 30, 90 or 365 (days)", v)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// fail answers err: a 400 for a parameter error, else a 500 that says
// nothing of the cause (it is logged).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if br, ok := err.(badRequest); ok {
		writeError(w, http.StatusBadRequest, br.msg)
		return
	}
	s.log.Error("insights request failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "the figures cannot be read right now; try again later")
}
