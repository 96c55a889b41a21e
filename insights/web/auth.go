package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/seatflow/seatflow/insights/access"
)

// cookieName holds a browser's token after it logs in.
const cookieName = "seatflow_token"

// authenticate finds the caller's grant: a Bearer token, or the login
// cookie.
func (s *Server) authenticate(r *http.Request) (access.Grant, bool) {
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return access.Grant{}, false
		}
		token = strings.TrimSpace(rest)
	} else if c, err := r.Cookie(cookieName); err == nil {
		token = c.Value
	}
	if token == "" {
		return access.Grant{}, false
	}
	g, ok := s.tokens.Check(token)
	if ok {
		if lg, _ := r.Context().Value(logGrantKey{}).(*access.Grant); lg != nil {
			*lg = g
		}
	}
	return g, ok
}

// api answers 401 in JSON without a valid token.
func (s *Server) api(h func(http.ResponseWriter, *http.Request, access.Grant)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="seatflow"`)
			writeError(w, http.StatusUnauthorized, "a valid token is required: Authorization: Bearer <token>")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, g)), g)
	})
}

// page shows the login form, with 401, without a valid token.
func (s *Server) page(h func(http.ResponseWriter, *http.Request, access.Grant)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.authenticate(r)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			s.render(w, "login.html", loginView{Next: r.URL.RequestURI()})
			return
		}
		h(w, r, g)
	})
}

type loginView struct {
	Error string
	Next  string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, "login.html", loginView{Next: r.URL.Query().Get("next")})
}

// login checks the token of the form and keeps it in an HttpOnly,
// SameSite=Strict cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := r.PostFormValue("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		next = "/portfolio" // only paths of this site
	}
	g, ok := s.tokens.Check(token)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, "login.html", loginView{Error: "That token is not valid.", Next: next})
		return
	}
	if lg, _ := r.Context().Value(logGrantKey{}).(*access.Grant); lg != nil {
		*lg = g
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: 12 * 3600})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
