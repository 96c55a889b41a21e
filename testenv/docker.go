package testenv

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

var dockerCheck struct {
	once sync.Once
	ok   bool
}

// dockerAvailable reports whether a Docker engine answers. The docker
// client alone (as on machines without an engine) is not enough.
func dockerAvailable() bool {
	dockerCheck.once.Do(func() {
		if os.Getenv("SEATFLOW_TEST_NO_DOCKER") != "" {
			return
		}
		if os.Getenv("DOCKER_HOST") == "" {
			if _, err := os.Stat("/var/run/docker.sock"); err != nil {
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := testcontainers.NewDockerProvider()
		if err != nil {
			return
		}
		defer p.Close()
		dockerCheck.ok = p.Health(ctx) == nil
	})
	return dockerCheck.ok
}
