// Package access is who may see which partner's insights: tokens, each
// bound to a partner and a role, kept hashed in a token file.
//
// The file has a line per token: its ID, the SHA-256 of the token (hex),
// the partner, the role and when it was made, separated by tabs. The
// token itself is shown once, when made, and stored nowhere.
package access

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Roles a token may have. The four partner roles see their partner's
// customers alike (as the vendor's portal lets each of them open customer
// insights); an analyst sees every partner's.
const (
	GlobalAdmin = "global_admin"
	UserAdmin   = "user_admin"
	AdminAgent  = "admin_agent"
	SalesAgent  = "sales_agent"
	Analyst     = "analyst"
)

// Roles lists every role.
var Roles = []string{GlobalAdmin, UserAdmin, AdminAgent, SalesAgent, Analyst}

// Grant is what a token lets its holder see.
type Grant struct {
	ID      string // names the token in the file and in logs; not secret
	Partner string // empty for an analyst's token made without one
	Role    string
	Created time.Time
}

// AllPartners reports whether the grant sees every partner.
func (g Grant) AllPartners() bool { return g.Role == Analyst }

// tokenPrefix marks seatflow tokens, so that one pasted elsewhere is
// recognised (by people and by secret scanners).
const tokenPrefix = "sft_"

// Create makes a token for partner and role, appends its hash to the file
// at path (made if missing, readable by its owner only) and returns the
// token, which is stored nowhere.
func Create(path, partner, role string) (token string, g Grant, err error) {
	if !slices.Contains(Roles, role) {
		return "", g, fmt.Errorf("role %q: want one of %s", role, strings.Join(Roles, ", "))
	}
	if partner == "" && role != Analyst {
		return "", g, errors.New("a partner is required for every role but analyst")
	}
	if strings.ContainsAny(partner, "\t\n\r") {
		return "", g, fmt.Errorf("partner %q holds a tab or a line break", partner)
	}
	var secret [32]byte
	rand.Read(secret[:])
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(token))
	g = Grant{ID: hex.EncodeToString(sum[:])[:12], Partner: partner, Role: role, Created: time.Now().UTC().Truncate(time.Second)}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return "", g, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	line := strings.Join([]string{g.ID, hex.EncodeToString(sum[:]), g.Partner, g.Role, g.Created.Format(time.RFC3339)}, "\t") + "\n"
	if _, err := f.WriteString(line); err != nil {
		return "", g, fmt.Errorf("token file: %w", err)
	}
	return token, g, f.Close()
}

// Revoke removes the token of the given ID from the file at path.
func Revoke(path, id string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	var kept bytes.Buffer
	found := false
	for line := range strings.Lines(string(b)) {
		if f := strings.Split(strings.TrimRight(line, "\n"), "\t"); len(f) > 0 && f[0] == id {
			found = true
			continue
		}
		kept.WriteString(line)
	}
	if !found {
		return fmt.Errorf("no token %q in %s (seatflow token list shows the IDs)", id, path)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, kept.Bytes(), 0o600); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	return os.Rename(tmp, path)
}

// entry is one line of the file.
type entry struct {
	hash  [sha256.Size]byte
	grant Grant
}

// read parses the token file.
func read(path string) ([]entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		var e entry
		h, herr := hex.DecodeString(fieldAt(fields, 1))
		created, terr := time.Parse(time.RFC3339, fieldAt(fields, 4))
		if len(fields) != 5 || herr != nil || len(h) != sha256.Size || terr != nil || !slices.Contains(Roles, fields[3]) {
			return nil, fmt.Errorf("token file %s, line %d: want ID, SHA-256, partner, role and time, tab-separated", path, n)
		}
		copy(e.hash[:], h)
		e.grant = Grant{ID: fields[0], Partner: fields[2], Role: fields[3], Created: created}
		out = append(out, e)
	}
	return out, sc.Err()
}

func fieldAt(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// List reads the grants in the file at path.
func List(path string) ([]Grant, error) {
	es, err := read(path)
	if err != nil {
		return nil, err
	}
	out := make([]Grant, len(es))
	for i, e := range es {
		out[i] = e.grant
	}
	return out, nil
}

// Tokens checks tokens against the file at path, read again whenever it
// changes, so that a revoked token stops working without a restart.
type Tokens struct {
	path    string
	mu      sync.Mutex
	modTime time.Time
	size    int64
	entries []entry
}

// Open reads the token file at path.
func Open(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokens) reload() error {
	st, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if st.ModTime().Equal(t.modTime) && st.Size() == t.size && t.entries != nil {
		return nil
	}
	es, err := read(t.path)
	if err != nil {
		return err
	}
	if es == nil {
		es = []entry{}
	}
	t.modTime, t.size, t.entries = st.ModTime(), st.Size(), es
	return nil
}

// Check returns the grant of token, if the file holds it.
func (t *Tokens) Check(token string) (Grant, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.reload(); err != nil {
		return Grant{}, false // an unreadable file grants nothing
	}
	sum := sha256.Sum256([]byte(token))
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(e.hash[:], sum[:]) == 1 {
			return e.grant, true
		}
	}
	return Grant{}, false
}
