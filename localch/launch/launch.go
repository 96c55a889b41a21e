// Package launch starts the local ClickHouse (cmd/seatflow-chdb) as a child
// process: it fetches the chDB library if needed, finds or builds the
// binary, waits until it answers, and stops it.
package launch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/seatflow/seatflow/localch/chlib"
)

// BinaryName is the local ClickHouse server's executable.
const BinaryName = "seatflow-chdb"

// EnvBinary names the seatflow-chdb binary to run.
const EnvBinary = "SEATFLOW_CHDB_BIN"

// Options configure a local ClickHouse.
type Options struct {
	Addr     string    // listen address; default 127.0.0.1:0 (a free port)
	DataDir  string    // required
	Binary   string    // default: $SEATFLOW_CHDB_BIN, beside this program, $PATH, or built from source
	CacheDir string    // chDB library and built binaries; default chlib.DefaultCacheDir()
	Progress io.Writer // fetch progress; default os.Stderr
	Log      io.Writer // the server's own log; default discarded
}

// Server is a running local ClickHouse.
type Server struct {
	Addr    string // host:port of the HTTP interface
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// URL is the HTTP address, e.g. http://127.0.0.1:8123.
func (s *Server) URL() string { return "http://" + s.Addr }

// Start launches the server and returns once it answers /ping.
func Start(ctx context.Context, opt Options) (*Server, error) {
	if opt.DataDir == "" {
		return nil, errors.New("local ClickHouse: a data directory is required")
	}
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	if opt.CacheDir == "" {
		opt.CacheDir = chlib.DefaultCacheDir()
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	lib, err := chlib.Ensure(ctx, chlib.Options{CacheDir: opt.CacheDir, Progress: opt.Progress})
	if err != nil {
		return nil, err
	}
	bin, err := findBinary(ctx, opt)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--listen", opt.Addr, "--data-dir", opt.DataDir)
	cmd.Env = append(os.Environ(), chlib.EnvLibPath+"="+lib)
	cmd.Stderr = opt.Log
	// Its own process group: a Ctrl-C in a terminal reaches the parent,
	// which then stops the server in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{cmd: cmd, exited: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addrc <- a
			}
		}
	}()
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.Addr = <-addrc:
	case <-s.exited:
		return nil, fmt.Errorf("local ClickHouse exited at start: %v (see its log)", s.waitErr)
	case <-ctx.Done():
		s.Kill()
		return nil, ctx.Err()
	}
	if err := s.waitReady(ctx); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/?query=SELECT%201", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("local ClickHouse did not answer within 60s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return fmt.Errorf("local ClickHouse exited: %v", s.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop asks the server to shut down and waits for it.
func (s *Server) Stop(ctx context.Context) error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		var ee *exec.ExitError
		if s.waitErr != nil && !errors.As(s.waitErr, &ee) {
			return s.waitErr
		}
		return nil
	case <-ctx.Done():
		s.Kill()
		return fmt.Errorf("local ClickHouse did not stop in time, killed: %w", ctx.Err())
	}
}

// Kill ends the server at once, as a crash would (SIGKILL).
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Exited is closed when the server process has ended.
func (s *Server) Exited() <-chan struct{} { return s.exited }

func findBinary(ctx context.Context, opt Options) (string, error) {
	if opt.Binary != "" {
		return opt.Binary, nil
	}
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), BinaryName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if _, ok := sourceRoot(); ok {
		dir := filepath.Join(opt.CacheDir, "bin")
		return filepath.Join(dir, BinaryName), Build(ctx, dir, BinaryName)
	}
	if p, err := exec.LookPath(BinaryName); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found: build it (make build) and put it beside seatflow or on $PATH, or set %s", BinaryName, EnvBinary)
}

const modulePath = "github.com/seatflow/seatflow"

// sourceRoot finds the seatflow module above the working directory (tests
// and `go run` work from a checkout, where the binary can be built).
func sourceRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			return dir, strings.TrimSpace(first) == "module "+modulePath
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Build builds the named commands (./cmd/NAME) of the seatflow checkout
// the working directory is in, into dir; Go's build cache makes this quick
// after the first time. Each goes to a temp name and is renamed, so
// parallel test processes never run a half-written binary.
func Build(ctx context.Context, dir string, names ...string) error {
	root, ok := sourceRoot()
	if !ok {
		return errors.New("not inside a seatflow checkout: cannot build from source")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range names {
		tmp, err := os.CreateTemp(dir, name+"-*")
		if err != nil {
			return err
		}
		tmp.Close()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp.Name(), "./cmd/"+name)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("build %s: %w\n%s", name, err, out)
		}
		if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }
