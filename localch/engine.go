package localch

// Engine runs one SQL statement and returns its output in the given format.
// Implementations need not be safe for concurrent use: the Server serialises
// calls, because chDB's session state (current database, SET values) is
// shared by every query.
type Engine interface {
	Query(query, format string) ([]byte, error)
}
