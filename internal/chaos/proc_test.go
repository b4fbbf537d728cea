package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds cmd/ddbsync into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ddbsync")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ddbsync/ddbsync/cmd/ddbsync").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one ddbsync process; its standard output and error also go to
// NAME.log in the seed's log directory.
type proc struct {
	name string
	args []string
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	file *os.File
	done chan struct{}
	code int // -1: killed by a signal

	mu        sync.Mutex
	suspended bool
	signalled string // the last signal the schedule sent
}

func startProc(bin, logDir, name string, args []string) (*proc, error) {
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "$ ddbsync %s\n", strings.Join(args, " "))
	p := &proc{name: name, args: args, out: &syncBuffer{}, file: f, done: make(chan struct{})}
	w := io.MultiWriter(p.out, f)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = w
	p.cmd.Stderr = w
	p.cmd.Env = os.Environ() // ddbtest.Main set dummy credentials and the region
	dieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		case err != nil:
			p.code = -2
		}
		fmt.Fprintf(f, "--- exit code %d\n", p.code)
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit; ok is false after the timeout.
func (p *proc) wait(timeout time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.code, true
	case <-time.After(timeout):
		return 0, false
	}
}

func (p *proc) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	p.mu.Lock()
	switch sig {
	case syscall.SIGSTOP:
		p.suspended = true
	case syscall.SIGCONT:
		p.suspended = false
	default:
		p.signalled = sig.String()
	}
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(sig)
}

// stop kills a process that is still running (test cleanup).
func (p *proc) stop() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// await waits until the output matches re (true) or the process exits
// first (false); an error after the timeout.
func (p *proc) await(re *regexp.Regexp, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		if re.MatchString(p.out.String()) {
			return true, nil
		}
		if p.exited() {
			return re.MatchString(p.out.String()), nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("%s: no line matching %q within %s", p.name, re, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the last n lines of the process's output.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return "    " + strings.Join(lines, "\n    ")
}
