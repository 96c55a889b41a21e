package testenv

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/seatflow/seatflow/localch/launch"
)

// BuildSeatflow builds the seatflow binary, with the local ClickHouse beside
// it, into a temp dir and returns its path.
func BuildSeatflow(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := launch.Build(context.Background(), dir, "seatflow", launch.BinaryName); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "seatflow")
}
