// Package web serves partners' insights: server-rendered pages (the
// portfolio, "Analyze", and one customer's insights), a JSON API and
// streamed exports, each bound to the caller's token.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/seatflow/seatflow/insights/access"
	"github.com/seatflow/seatflow/insights/store"
)

// Server answers the portal's pages and API.
type Server struct {
	store  *store.Store
	tokens *access.Tokens
	log    *slog.Logger
}

// New serves the insights in st to the holders of tokens.
func New(st *store.Store, tokens *access.Tokens, log *slog.Logger) *Server {
	return &Server{store: st, tokens: tokens, log: log}
}

// Handler routes every request; all but the login page and static
// assets need a token.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })

	mux.Handle("GET /{$}", s.page(func(w http.ResponseWriter, r *http.Request, _ access.Grant) {
		http.Redirect(w, r, "/portfolio", http.StatusSeeOther)
	}))
	mux.Handle("GET /portfolio", s.page(s.portfolioPage))
	mux.Handle("GET /customers/{tenant_id}", s.page(s.customerPage))

	mux.Handle("GET /api/v1/customers", s.api(s.apiCustomers))
	mux.Handle("GET /api/v1/customers/{tenant_id}", s.api(s.apiCustomer))
	mux.Handle("GET /api/v1/portfolio", s.api(s.apiPortfolio))
	mux.Handle("GET /api/v1/export/deployment", s.api(s.exportDeployment))
	mux.Handle("GET /api/v1/export/usage", s.api(s.exportUsage))
	return s.accessLog(securityHeaders(mux))
}

type grantKey struct{}

// grantOf is the caller's grant, set by page or api.
func grantOf(ctx context.Context) (access.Grant, bool) {
	g, ok := ctx.Value(grantKey{}).(access.Grant)
	return g, ok
}

// statusRecorder keeps the status an answer had, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets streamed exports reach the client as they are written.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// accessLog writes a line per request: who (partner, role, token ID),
// what, the status and the time taken. Never the token.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		var g access.Grant
		r = r.WithContext(context.WithValue(r.Context(), logGrantKey{}, &g))
		next.ServeHTTP(rec, r)
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", max(rec.status, 200),
			"partner", g.Partner, "role", g.Role, "token_id", g.ID, "duration", time.Since(start).Round(time.Microsecond))
	})
}

// logGrantKey carries where the access log learns the caller's grant.
type logGrantKey struct{}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}
