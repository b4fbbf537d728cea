package cmdutil

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/internal/iostreams"
)

// --log-file appends the logs, in the usual format, to the file; nothing
// reaches standard output, and neither the status display's hook nor a
// command moving its logs to standard error takes them away from the file.
func TestLogFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddbsync.log")
	if err := os.WriteFile(path, []byte("earlier line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, msg := range []string{"first run", "second run"} {
		ios, _, out, errOut := iostreams.Test()
		f := &Factory{IOStreams: ios, Globals: DefaultGlobals()}
		f.Globals.LogFile = path
		l, err := f.Logger()
		if err != nil {
			t.Fatal(err)
		}
		restoreHook := f.LogWriter().SetHook(func(io.Writer, []byte) (int, error) { t.Fatal("hook called"); return 0, nil })
		restoreOut := f.LogWriter().SetOutput(errOut)
		l.Info(msg)
		l.Warn("careful", zap.Int("n", i))
		restoreOut()
		restoreHook()
		f.CloseLog()
		if out.Len() != 0 || errOut.Len() != 0 {
			t.Fatalf("run %d wrote to stdout %q / stderr %q", i, out, errOut)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^earlier line$`),
		regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d first run$`),
		regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d WARN careful n=0$`),
		regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d second run$`),
		regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d WARN careful n=1$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("log file:\n%s", b)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i, lines[i], re)
		}
	}
}

func TestLogFileCannotBeOpened(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	f := &Factory{IOStreams: ios, Globals: DefaultGlobals()}
	f.Globals.LogFile = filepath.Join(t.TempDir(), "no-such-dir", "ddbsync.log")
	_, err := f.Logger()
	if err == nil || !strings.Contains(err.Error(), "--log-file") || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("err = %v", err)
	}
	if ExitCode(err) != ExitUsage {
		t.Errorf("exit %d, want %d", ExitCode(err), ExitUsage)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q", out)
	}
}
