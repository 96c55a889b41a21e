// Package chlib fetches the chDB engine library (libchdb.so) into a cache
// directory on first use and finds it there afterwards.
//
// The library ships in the npm registry as @chdb/lib-linux-<arch>-gnu. The
// npm client is asked for the tarball's address and integrity (so the
// registry, mirrors and proxies configured for npm apply); the tarball is
// downloaded with progress, checked against the integrity hash and
// unpacked. A lock file keeps parallel test processes from fetching twice.
package chlib

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Version is the chDB library release seatflow is tested with.
const Version = "26.5.3"

// EnvLibPath names a libchdb.so to use instead of the cache; chdb-go reads
// the same variable.
const EnvLibPath = "CHDB_LIB_PATH"

// Options says where to cache the library and where to report progress.
type Options struct {
	CacheDir string    // default: the user cache dir + /seatflow
	Progress io.Writer // default: os.Stderr
}

// DefaultCacheDir is SEATFLOW_CACHE_DIR, else the user's cache directory.
func DefaultCacheDir() string {
	if d := os.Getenv("SEATFLOW_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "seatflow")
	}
	return filepath.Join(os.TempDir(), "seatflow-cache")
}

// Ensure returns the path of libchdb.so, fetching it on first use.
func Ensure(ctx context.Context, opt Options) (string, error) {
	if p := os.Getenv(EnvLibPath); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w (unset it to let seatflow fetch the chDB library)", EnvLibPath, p, err)
		}
		return p, nil
	}
	if opt.CacheDir == "" {
		opt.CacheDir = DefaultCacheDir()
	}
	if opt.Progress == nil {
		opt.Progress = os.Stderr
	}
	pkg, err := packageName()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(opt.CacheDir, "chdb-"+Version)
	lib := filepath.Join(dir, "libchdb.so")
	if _, err := os.Stat(lib); err == nil {
		return lib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create chDB cache dir: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(lib); err == nil {
		return lib, nil // another process fetched it while we waited
	}
	if err := fetch(ctx, pkg, lib, opt.Progress); err != nil {
		return "", fmt.Errorf("fetch chDB engine %s (%s): %w", Version, pkg, err)
	}
	return lib, nil
}

func packageName() (string, error) {
	if runtime.GOOS != "linux" {
		return "", fmt.Errorf("the local ClickHouse needs Linux (chDB ships no %s library here); point seatflow at a ClickHouse server instead", runtime.GOOS)
	}
	switch runtime.GOARCH {
	case "amd64":
		return "@chdb/lib-linux-x64-gnu", nil
	case "arm64":
		return "@chdb/lib-linux-arm64-gnu", nil
	}
	return "", fmt.Errorf("no chDB library for linux/%s; point seatflow at a ClickHouse server instead", runtime.GOARCH)
}

func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock chDB cache: %w", err)
	}
	for {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			return func() { f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type dist struct {
	Tarball   string `json:"dist.tarball"`
	Integrity string `json:"dist.integrity"`
}

func fetch(ctx context.Context, pkg, lib string, progress io.Writer) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("npm is not installed: install Node.js and npm (Debian: apt-get install -y npm), or set " + EnvLibPath + " to a libchdb.so")
	}
	cmd := exec.CommandContext(ctx, npm, "view", "--json", pkg+"@"+Version, "dist.tarball", "dist.integrity")
	cmd.Stderr = nil
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("npm view %s@%s: %w: %s", pkg, Version, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return fmt.Errorf("npm view %s@%s: %w", pkg, Version, err)
	}
	var d dist
	if err := json.Unmarshal(out, &d); err != nil || d.Tarball == "" || !strings.HasPrefix(d.Integrity, "sha512-") {
		return fmt.Errorf("npm view %s@%s gave no tarball and sha512 integrity: %q", pkg, Version, out)
	}
	want, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(d.Integrity, "sha512-"))
	if err != nil {
		return fmt.Errorf("bad integrity %q: %w", d.Integrity, err)
	}

	tgz, err := os.CreateTemp(filepath.Dir(lib), "download-*.tgz")
	if err != nil {
		return err
	}
	defer os.Remove(tgz.Name())
	defer tgz.Close()
	h := sha512.New()
	if err := download(ctx, d.Tarball, io.MultiWriter(tgz, h), progress); err != nil {
		return err
	}
	if got := h.Sum(nil); string(got) != string(want) {
		return errors.New("downloaded tarball does not match the registry's sha512 integrity; try again")
	}
	if _, err := tgz.Seek(0, io.SeekStart); err != nil {
		return err
	}
	fmt.Fprintf(progress, "chDB engine %s: unpacking libchdb.so\n", Version)
	return extract(tgz, "package/libchdb.so", lib)
}

func download(ctx context.Context, url string, w io.Writer, progress io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("download: %w (no network to the npm registry? set %s to a libchdb.so)", err, EnvLibPath)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: %s", resp.Status)
	}
	pr := &progressWriter{total: resp.ContentLength, out: progress, start: time.Now()}
	_, err = io.Copy(io.MultiWriter(w, pr), resp.Body)
	pr.report(true)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	return nil
}

// progressWriter prints a line every two seconds while bytes flow.
type progressWriter struct {
	total, done int64
	out         io.Writer
	start, last time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.report(false)
	return len(b), nil
}

func (p *progressWriter) report(final bool) {
	now := time.Now()
	if !final && now.Sub(p.last) < 2*time.Second {
		return
	}
	p.last = now
	const mb = 1 << 20
	pct := ""
	if p.total > 0 {
		pct = fmt.Sprintf(" of %.1f MB (%d%%)", float64(p.total)/mb, p.done*100/p.total)
	}
	fmt.Fprintf(p.out, "chDB engine %s: downloaded %.1f MB%s in %s\n", Version, float64(p.done)/mb, pct, now.Sub(p.start).Round(100*time.Millisecond))
}

func extract(r io.Reader, name, dst string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("unpack: %s not in the package", name)
		}
		if err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		if hdr.Name != name {
			continue
		}
		tmp := dst + ".partial"
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return fmt.Errorf("unpack: %w", err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, dst)
	}
}
