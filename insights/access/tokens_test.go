package access

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	tokA, a, err := Create(path, "partner-1", SalesAgent)
	if err != nil {
		t.Fatal(err)
	}
	tokB, b, err := Create(path, "", Analyst)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := toks.Check(tokA); !ok || g != a || g.AllPartners() {
		t.Errorf("token A: %+v %v, want %+v", g, ok, a)
	}
	if g, ok := toks.Check(tokB); !ok || !g.AllPartners() {
		t.Errorf("analyst token: %+v %v", g, ok)
	}
	for _, bad := range []string{"", "sft_", tokA + "x", strings.ToUpper(tokA)} {
		if _, ok := toks.Check(bad); ok {
			t.Errorf("token %q accepted", bad)
		}
	}
	file, _ := os.ReadFile(path)
	if strings.Contains(string(file), tokA) || strings.Contains(string(file), tokA[4:]) {
		t.Error("the token file holds a token, not only its hash")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", st.Mode().Perm())
	}
	if err := Revoke(path, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := toks.Check(tokA); ok {
		t.Error("a revoked token is still accepted")
	}
	if _, ok := toks.Check(tokB); !ok {
		t.Error("revoking one token revoked another")
	}
	if gs, err := List(path); err != nil || len(gs) != 1 || gs[0] != b {
		t.Errorf("list after revoke: %+v %v", gs, err)
	}
	if err := Revoke(path, a.ID); err == nil {
		t.Error("revoking an unknown ID succeeded")
	}
}

func TestCreateRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	for _, c := range []struct{ name, partner, role, want string }{
		{"unknown role", "p", "owner", "want one of"},
		{"no partner", "", SalesAgent, "partner is required"},
		{"tab in partner", "p\tq", SalesAgent, "tab"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := Create(path, c.partner, c.role); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}

func TestMalformedFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("# comment\nabc\tnot-hex\tp\tsales_agent\t2026-01-01T00:00:00Z\n"), 0o600)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("got %v, want an error naming line 2", err)
	}
}
