package localch

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Exception is a ClickHouse error: a numeric code and the text after it.
type Exception struct {
	Code    int
	Message string
}

func (e *Exception) Error() string {
	return fmt.Sprintf("Code: %d. DB::Exception: %s", e.Code, e.Message)
}

// ClickHouse error codes used by the front end itself.
const (
	codeUnknownSetting   = 115
	codeBadArguments     = 36
	codeCannotDecompress = 271
	codeUnknownFormat    = 73
	codeSyntaxError      = 62
	codeUnknownException = 1002
)

var exceptionPrefix = regexp.MustCompile(`^Code: (\d+)\. DB::Exception: `)

// parseException turns the engine's error text into an Exception. chDB
// sometimes nests the prefix ("Code: 107. DB::Exception: Code: 107. ..."),
// which a real server does not, so repeated prefixes are folded.
func parseException(err error) *Exception {
	var ex *Exception
	if errors.As(err, &ex) {
		return ex
	}
	msg := strings.TrimSpace(err.Error())
	code := codeUnknownException
	for {
		m := exceptionPrefix.FindStringSubmatch(msg)
		if m == nil {
			break
		}
		code, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return &Exception{Code: code, Message: msg}
}

// httpStatus maps an error code to the HTTP status ClickHouse's HTTP handler
// answers with (src/Server/HTTPHandler.cpp, exceptionCodeToHTTPStatus).
func httpStatus(code int) int {
	switch code {
	case 164, 497: // READONLY, ACCESS_DENIED
		return http.StatusForbidden
	case 516, 192, 193, 194: // AUTHENTICATION_FAILED, UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD
		return http.StatusUnauthorized
	case 62, 26, 27, 32, 33, 38, 72, 6, 41, 69, 70, 53, 44, 36, 75, 100,
		115, 130, 395, 43, 73, 117, 35, 57, 42, 215: // parse, type and argument errors
		return http.StatusBadRequest
	case 60, 81, 46, 47, 50, 56, 107, 85: // unknown table, database, function, identifier, type, storage, file
		return http.StatusNotFound
	case 159: // TIMEOUT_EXCEEDED
		return http.StatusGatewayTimeout
	case 202, 252: // TOO_MANY_SIMULTANEOUS_QUERIES, TOO_MANY_PARTS
		return http.StatusServiceUnavailable
	case 241: // MEMORY_LIMIT_EXCEEDED
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}
