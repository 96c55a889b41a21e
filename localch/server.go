package localch

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Server answers ClickHouse's HTTP interface from an Engine.
type Server struct {
	engine Engine
	tmpDir string
	log    *slog.Logger

	// mu serialises engine use: chDB has one session per process and every
	// request changes its database and settings for the length of its query.
	mu sync.Mutex
	// db is the session's current database, "" when unknown: a request
	// that finds its database already current skips the USE. described
	// holds answers to DESCRIBE TABLE, which clickhouse-go asks before
	// every batch insert over HTTP. Each is one engine call, and a call
	// costs about as much as a small insert, so a small insert took four
	// calls where it now takes one. Both are forgotten after any
	// statement that may change a table or the session (anything but
	// reads and inserts); this process alone uses the data directory.
	db        string
	described map[string][]byte

	version, timezone, displayName string
	seq                            atomic.Uint64
	// password, when set, every request must carry (see guard.go); when
	// empty, requests must name a loopback Host.
	password string
}

// RequirePassword makes every request carry password; the server may then
// be reached by any host name.
func (s *Server) RequirePassword(password string) { s.password = password }

// Baseline settings that make the engine answer like a ClickHouse server
// rather than like clickhouse-local, whose defaults differ.
var baseline = map[string]string{
	"async_insert": "0",
}

// NewServer prepares the engine (baseline settings) and reads what the
// server reports about itself. tmpDir holds insert bodies while they load.
func NewServer(engine Engine, tmpDir string, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	s := &Server{engine: engine, tmpDir: tmpDir, log: log, described: map[string][]byte{}}
	if _, err := engine.Query(setStatement(baseline), "TabSeparated"); err != nil {
		return nil, fmt.Errorf("apply baseline settings: %w", err)
	}
	out, err := engine.Query("SELECT version(), timezone(), displayName()", "TabSeparated")
	if err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\t")
	if len(f) != 3 {
		return nil, fmt.Errorf("read server version: unexpected answer %q", out)
	}
	s.version, s.timezone, s.displayName = f[0], f[1], f[2]
	return s, nil
}

// Version is the ClickHouse version of the engine.
func (s *Server) Version() string { return s.version }

// Params of the HTTP interface that are not settings (HTTPHandler.cpp's
// reserved names); every other URL parameter is applied as a setting.
var reservedParams = map[string]bool{
	"query": true, "database": true, "default_format": true, "compress": true,
	"decompress": true, "query_id": true, "client_protocol_version": true,
	"session_id": true, "session_timeout": true, "session_check": true,
	"user": true, "password": true, "quota_key": true, "buffer_size": true,
	"wait_end_of_query": true, "role": true, "stacktrace": true,
	"enable_http_compression": true, "http_native_compression_disable_checksumming_on_decompress": true,
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.password == "" && !allowedHost(r):
		http.Error(w, "the local ClickHouse answers requests to a loopback name only (Host "+r.Host+")", http.StatusForbidden)
		return
	case s.password != "" && password(r) != s.password:
		s.writeError(w, &Exception{Code: codeAuthFailed, Message: "Authentication failed: password is incorrect. (AUTHENTICATION_FAILED)"})
		return
	}
	switch r.URL.Path {
	case "/ping", "/replicas_status":
		io.WriteString(w, "Ok.\n")
		return
	case "/", "/query":
	default:
		http.Error(w, "There is no handle "+r.URL.Path+"\n", http.StatusNotFound)
		return
	}
	params := r.URL.Query()
	if r.Method == http.MethodGet && params.Get("query") == "" {
		io.WriteString(w, "Ok.\n")
		return
	}
	queryID := params.Get("query_id")
	if queryID == "" {
		queryID = newQueryID()
	}
	w.Header().Set("X-ClickHouse-Query-Id", queryID)
	w.Header().Set("X-ClickHouse-Server-Display-Name", s.displayName)
	w.Header().Set("X-ClickHouse-Timezone", s.timezone)

	req, err := s.readRequest(r, params)
	if req != nil {
		defer req.cleanup()
	}
	if err == nil {
		if rej := refuse(r.Method, req.text); rej != nil {
			err = rej
		}
	}
	if err == nil {
		var out []byte
		out, err = s.execute(req)
		if err == nil {
			s.writeResult(w, r, req, out)
			return
		}
	}
	s.writeError(w, err)
}

// request is one parsed HTTP query.
type request struct {
	query    string // SQL to run, with FROM INFILE when data was sent
	format   string // output format when the query names none
	database string
	settings map[string]string
	compress bool   // compress=1: answer in ClickHouse's compressed frames
	method   string // network_compression_method for compress=1
	dataFile string
	// text is the SQL as the client sent it (query holds the front end's
	// INFILE clause for sent data)
	text string
	// clientRevision is client_protocol_version, the revision the client
	// decodes the hello answer with.
	clientRevision string
}

func (q *request) cleanup() {
	if q.dataFile != "" {
		os.Remove(q.dataFile)
	}
}

func (s *Server) readRequest(r *http.Request, params map[string][]string) (*request, error) {
	get := func(k string) string {
		if v := params[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	q := &request{
		format:   get("default_format"),
		database: get("database"),
		settings: map[string]string{},
		compress: get("compress") == "1",
		method:   strings.ToUpper(get("network_compression_method")),

		clientRevision: get("client_protocol_version"),
	}
	if q.database == "" {
		q.database = r.Header.Get("X-ClickHouse-Database")
	}
	if q.database == "" {
		q.database = "default"
	}
	if q.format == "" {
		q.format = r.Header.Get("X-ClickHouse-Format")
	}
	if q.format == "" {
		q.format = "TabSeparated"
	}
	for k, v := range params {
		if reservedParams[k] || len(v) == 0 {
			continue
		}
		if strings.HasSuffix(k, "_format") || strings.HasSuffix(k, "_structure") || strings.HasSuffix(k, "_types") {
			return q, &Exception{Code: codeBadArguments, Message: "external tables are not supported by the local ClickHouse"}
		}
		if !settingName.MatchString(k) {
			return q, &Exception{Code: codeUnknownSetting, Message: fmt.Sprintf("Unknown setting '%s'. (UNKNOWN_SETTING)", k)}
		}
		q.settings[k] = v[len(v)-1]
	}

	body, err := decodeBody(r, get("decompress") == "1")
	if err != nil {
		return q, err
	}
	text := get("query")
	if r.Method != http.MethodPost {
		q.query, q.text = text, text
		return q, nil
	}
	if text != "" {
		// The query in the URL and a data body: stream the data to a file
		// when the query is INSERT ... FORMAT X, as a server streams it.
		if prefix, format, rest, ok := splitInsert(text); ok && strings.TrimSpace(rest) == "" {
			n, path, err := s.spool(body)
			if err != nil {
				return q, err
			}
			if n == 0 {
				os.Remove(path)
				q.query, q.text = text, text
				return q, nil
			}
			q.dataFile = path
			q.query = q.fromInfile(prefix, path, format)
			return q, nil
		}
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return q, &Exception{Code: codeCannotDecompress, Message: "read request body: " + err.Error()}
	}
	if text != "" && len(data) > 0 {
		text += "\n" + string(data)
	} else if text == "" {
		text = string(data)
	}
	// The whole query in the body: INSERT ... FORMAT X followed by its data.
	if prefix, format, rest, ok := splitInsert(text); ok && strings.TrimSpace(rest) != "" {
		_, path, err := s.spool(strings.NewReader(rest))
		if err != nil {
			return q, err
		}
		q.dataFile = path
		q.query = q.fromInfile(prefix, path, format)
		return q, nil
	}
	q.query, q.text = text, text
	return q, nil
}

// spool writes insert data to a temporary file the engine reads with FROM
// INFILE: the engine's query API takes a C string, which binary formats
// such as Native cannot travel in.
func (s *Server) spool(body io.Reader) (int64, string, error) {
	f, err := os.CreateTemp(s.tmpDir, "insert-*.data")
	if err != nil {
		return 0, "", fmt.Errorf("spool insert data: %w", err)
	}
	n, err := io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, "", &Exception{Code: codeCannotDecompress, Message: "read insert data: " + err.Error()}
	}
	return n, f.Name(), nil
}

var insertFormat = regexp.MustCompile(`(?is)^\s*(INSERT\s+INTO\s.*?)\s+FORMAT\s+([A-Za-z0-9_]+)`)

// splitInsert splits "INSERT INTO t (...) FORMAT X<data>" into the part
// before FORMAT, the format name and the inline data after it.
func splitInsert(text string) (prefix, format, rest string, ok bool) {
	m := insertFormat.FindStringSubmatchIndex(text)
	if m == nil {
		return "", "", "", false
	}
	prefix, format, rest = text[m[2]:m[3]], text[m[4]:m[5]], text[m[1]:]
	// Data starts after the blanks and one line break that follow the name.
	rest = strings.TrimLeft(rest, " \t")
	rest = strings.TrimPrefix(strings.TrimPrefix(rest, "\r"), "\n")
	return prefix, format, rest, true
}

// fromInfile is the INSERT that reads a spooled body. The request's
// settings go in its SETTINGS clause rather than around it (set, run,
// restore: three more engine calls, a third of a small insert's time),
// unless query parameters need the session.
func (q *request) fromInfile(prefix, path, format string) string {
	q.text = prefix + " FORMAT " + format
	clause := ""
	if len(q.settings) > 0 {
		for k := range q.settings {
			if strings.HasPrefix(k, "param_") {
				return fmt.Sprintf("%s FROM INFILE %s FORMAT %s", prefix, quote(path), format)
			}
		}
		clause = " SETTINGS " + settingList(q.settings)
		q.settings = map[string]string{}
	}
	return fmt.Sprintf("%s FROM INFILE %s%s FORMAT %s", prefix, quote(path), clause, format)
}

var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// dropSync matches a trailing SYNC on DROP, DETACH and TRUNCATE. The chDB
// engine (26.5) hangs on SYNC: it waits for its own session to release the
// table. The plain statement frees the name at once on an Atomic database,
// which is what SYNC is used for, so the front end drops the keyword.
var dropSync = regexp.MustCompile(`(?is)^(\s*(?:DROP|DETACH|TRUNCATE)\s.*?)\s+SYNC\s*;?\s*$`)

var setQuery = regexp.MustCompile(`(?is)^\s*SET\s`)

func (s *Server) execute(q *request) ([]byte, error) {
	query := strings.TrimSpace(q.query)
	if query == "" {
		return nil, &Exception{Code: codeSyntaxError, Message: "Empty query. (SYNTAX_ERROR)"}
	}
	if query == helloQuery && q.format == "Native" {
		return s.hello(q.clientRevision)
	}
	query = dropSync.ReplaceAllString(query, "$1")
	if setQuery.MatchString(query) {
		// Without a session, a SET lasts for its own request only: it must
		// not leak into the shared engine session.
		return nil, nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	describe := ""
	if q.dataFile == "" && describeTable.MatchString(query) {
		describe = q.database + "\x00" + q.format + "\x00" + settingList(q.settings) + "\x00" + query
		if out, ok := s.described[describe]; ok {
			return out, nil
		}
	}
	if !readOrInsert.MatchString(query) {
		defer s.forget()
	}
	if s.db != q.database {
		if _, err := s.engine.Query("USE "+quoteIdent(q.database), "TabSeparated"); err != nil {
			s.db = ""
			return nil, err
		}
		s.db = q.database
	}
	if len(q.settings) > 0 {
		restore, err := s.applySettings(q.settings)
		if err != nil {
			return nil, err
		}
		defer func() {
			if _, err := s.engine.Query(restore, "TabSeparated"); err != nil {
				s.log.Error("restore settings", "err", err)
			}
		}()
	}
	out, err := s.engine.Query(query, q.format)
	if err == nil && describe != "" {
		if len(s.described) >= maxDescribed {
			clear(s.described)
		}
		s.described[describe] = out
	}
	return out, err
}

// forget drops what the server knows of the session and the tables.
func (s *Server) forget() {
	s.db = ""
	clear(s.described)
}

// maxDescribed bounds the DESCRIBE answers kept; tables are few.
const maxDescribed = 1024

// readOrInsert matches statements that change no table's structure and
// not the session: the ones after which the server may go on trusting
// what it knows. Anything else, a leading comment included, makes it
// forget.
var readOrInsert = regexp.MustCompile(`(?i)^\s*\(*\s*(SELECT|WITH|DESCRIBE|DESC|SHOW|EXISTS|EXPLAIN|INSERT)\s`)

// describeTable matches DESCRIBE of a table by name, the answers kept: a
// table function's structure may follow data outside the engine.
var describeTable = regexp.MustCompile("(?i)^\\s*DESC(RIBE)?\\s+(TABLE\\s+)?[`\"]?[A-Za-z0-9_]+[`\"]?(\\.[`\"]?[A-Za-z0-9_]+[`\"]?)?\\s*$")

// applySettings sets the request's settings and returns the statement that
// puts the session back as it was.
func (s *Server) applySettings(settings map[string]string) (string, error) {
	names := make([]string, 0, len(settings))
	for k := range settings {
		if !strings.HasPrefix(k, "param_") {
			names = append(names, quote(k))
		}
	}
	prev := map[string]string{}
	if len(names) > 0 {
		out, err := s.engine.Query("SELECT name, value FROM system.settings WHERE name IN ("+strings.Join(names, ",")+")", "TabSeparatedRaw")
		if err != nil {
			return "", err
		}
		// Values may be empty: trimming the output would lose their tab.
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, "\t"); ok {
				prev[k] = v
			}
		}
	}
	for k := range settings {
		if _, known := prev[k]; !known && !strings.HasPrefix(k, "param_") {
			return "", &Exception{Code: codeUnknownSetting, Message: fmt.Sprintf("Unknown setting '%s'. (UNKNOWN_SETTING)", k)}
		}
	}
	if _, err := s.engine.Query(setStatement(settings), "TabSeparated"); err != nil {
		return "", err
	}
	if len(prev) == 0 {
		return "SELECT 1", nil
	}
	return setStatement(prev), nil
}

func setStatement(settings map[string]string) string {
	return "SET " + settingList(settings)
}

// settingList is "a = 'x', b = 'y'", names sorted, as SET and a query's
// SETTINGS clause take it.
func settingList(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString(" = ")
		b.WriteString(quote(settings[k]))
	}
	return b.String()
}

var outputFormat = regexp.MustCompile(`(?is)\sFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$`)

func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, q *request, out []byte) {
	format := q.format
	if m := outputFormat.FindStringSubmatch(q.query); m != nil && q.dataFile == "" {
		format = m[1]
	}
	w.Header().Set("X-ClickHouse-Format", format)
	w.Header().Set("Content-Type", contentType(format))
	if err := writeBody(w, r, q, out); err != nil {
		s.log.Debug("write response", "err", err)
	}
}

func (s *Server) writeError(w http.ResponseWriter, err error) {
	ex := parseException(err)
	text := ex.Error()
	if !strings.Contains(text, "(version ") {
		text += " (version " + s.version + ")"
	}
	w.Header().Set("X-ClickHouse-Exception-Code", fmt.Sprint(ex.Code))
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(httpStatus(ex.Code))
	io.WriteString(w, text+"\n")
}

func contentType(format string) string {
	switch strings.ToLower(format) {
	case "json", "jsoncompact", "jsonstrings":
		return "application/json; charset=UTF-8"
	case "native", "rowbinary", "rowbinarywithnames", "rowbinarywithnamesandtypes", "parquet", "arrow", "avro", "orc":
		return "application/octet-stream"
	case "csv", "csvwithnames", "csvwithnamesandtypes":
		return "text/csv; charset=UTF-8; header=absent"
	}
	return "text/plain; charset=UTF-8"
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "`", "\\`") + "`"
}

func newQueryID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
