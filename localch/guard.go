package localch

import (
	"net"
	"net/http"
	"regexp"
	"strings"
)

// The local ClickHouse runs on a developer's machine, where any web page
// open in their browser can send requests to loopback. A real server has
// users, passwords, readonly GETs and user_files_path; this one guards
// the same ground itself:
//   - the Host header must name loopback (a page on another origin that
//     rebinds its name to 127.0.0.1 still sends its own name), unless the
//     server has a password, which every request must then carry;
//   - a GET runs reads only, as a server's GET implies readonly;
//   - table functions and clauses that reach files, URLs, programs or
//     other servers are refused: the server's own insert spooling is the
//     only file it reads.

// Exception codes of a ClickHouse server.
const (
	codeReadonly         = 164
	codePathAccessDenied = 291
	codeAuthFailed       = 516
)

var (
	readStatement = regexp.MustCompile(`(?i)^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b`)
	// reach: what reaches beyond the server's own tables
	reach = regexp.MustCompile(`(?i)\b(file|url|urlCluster|executable|executablePool|s3|s3Cluster|gcs|hdfs|hdfsCluster|azureBlobStorage|azureBlobStorageCluster|remote|remoteSecure|cluster|clusterAllReplicas|mysql|postgresql|jdbc|odbc|mongodb|redis|sqlite|deltaLake|iceberg|hudi)\s*\(|\b(INFILE|OUTFILE)\b|\bENGINE\s*=\s*(File|URL|S3|HDFS|Executable|ExecutablePool|MySQL|PostgreSQL|JDBC|ODBC|MongoDB|Redis|SQLite|AzureBlobStorage|Distributed)\b|\bCREATE\s+(OR\s+REPLACE\s+)?DICTIONARY\b|^\s*SYSTEM\b`)
)

// allowedHost says whether a request's Host names loopback.
func allowedHost(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// password is what the request carries: X-ClickHouse-Key, basic auth, or
// the password parameter, as a server takes it.
func password(r *http.Request) string {
	if k := r.Header.Get("X-ClickHouse-Key"); k != "" {
		return k
	}
	if _, p, ok := r.BasicAuth(); ok {
		return p
	}
	return r.URL.Query().Get("password")
}

// refuse says why the user's query text may not run, or nil.
func refuse(method, text string) *Exception {
	code := codeOnly(text)
	if method == http.MethodGet && !readStatement.MatchString(code) {
		return &Exception{Code: codeReadonly, Message: "Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries. (READONLY)"}
	}
	if m := reach.FindString(code); m != "" {
		return &Exception{Code: codePathAccessDenied, Message: "the local ClickHouse reads and writes its own tables only: " + strings.TrimSpace(strings.TrimSuffix(m, "(")) + " is refused. (PATH_ACCESS_DENIED)"}
	}
	return nil
}

// codeOnly is text with its string literals emptied and its comments
// blanked, so that what the patterns find is SQL, not data or remarks:
// 'file(' in a string is no call, and file/**/( is one.
func codeOnly(text string) string {
	var b strings.Builder
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			start := i + 1
			for i = start; i < len(text) && text[i] != c; i++ {
				if text[i] == '\\' {
					i++
				}
			}
			b.WriteByte(c)
			if c != '\'' { // quoted identifiers keep their names
				b.WriteString(text[start:min(i, len(text))])
			}
			b.WriteByte(c)
			i++
		case strings.HasPrefix(text[i:], "--") || c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
			b.WriteByte(' ')
		case strings.HasPrefix(text[i:], "/*"):
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				i = len(text)
			} else {
				i += end + 4
			}
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}
