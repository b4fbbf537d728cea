package version

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "GOOS", Value: "darwin"},
		{Key: "GOARCH", Value: "arm64"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-30T10:12:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	cases := []struct {
		name string
		set  string
		bi   *debug.BuildInfo
		want Info
	}{
		{"no build info", "", nil, Info{Version: "dev", Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}},
		{"checkout build", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			Info{Version: "dev", Commit: "0123456789abcdef0123456789abcdef01234567", CommitTime: "2026-11-30T10:12:00Z", Modified: true, Go: "go1.26.8", OS: "darwin", Arch: "arm64"}},
		{"go install @version", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			Info{Version: "v1.4.0", Go: "go1.26.8", OS: runtime.GOOS, Arch: runtime.GOARCH}},
		{"release: the tag wins", "v1.5.0", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: vcs[:4]},
			Info{Version: "v1.5.0", Commit: "0123456789abcdef0123456789abcdef01234567", CommitTime: "2026-11-30T10:12:00Z", Go: "go1.26.8", OS: "darwin", Arch: "arm64"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fromBuildInfo(c.set, c.bi); got != c.want {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestText(t *testing.T) {
	i := Info{Version: "v1.5.0", Commit: "abc", CommitTime: "2026-11-30T10:12:00Z", Modified: true, Go: "go1.26.8", OS: "linux", Arch: "amd64"}
	want := "ddbsync v1.5.0\ncommit:   abc (2026-11-30T10:12:00Z), with uncommitted changes\ngo:       go1.26.8 linux/amd64\n"
	if got := i.Text(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	i = Info{Version: "dev", Go: "go1.26.8", OS: "linux", Arch: "amd64"}
	if got := i.Text(); !strings.Contains(got, "commit:   unknown") {
		t.Errorf("no commit: %q", got)
	}
}

func TestVersionRunJSON(t *testing.T) {
	var out bytes.Buffer
	if err := versionRun(&Options{IO: &out, Version: "v2.0.0", Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for _, k := range []string{"version", "commit", "commit_time", "modified", "go", "os", "arch"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %q in %s", k, out.String())
		}
	}
	if got["version"] != "v2.0.0" || got["go"] != runtime.Version() {
		t.Errorf("got %s", out.String())
	}
}

// TestBinaryInGitCheckout builds the real binary, as a user does with
// `go build ./cmd/ddbsync` in a clone, and checks that `version --output
// json` names the checkout's commit.
func TestBinaryInGitCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped under -short")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (or no git): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "ddbsync")
	// -buildvcs=auto is go's default, stated because a GOFLAGS of
	// -buildvcs=false (set on some machines) would leave the commit out.
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, "github.com/ddbsync/ddbsync/cmd/ddbsync").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "version", "--output", "json")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ddbsync version --output json: %v\n%s", err, stderr.String())
	}
	var got Info
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := strings.TrimSpace(string(head)); got.Commit != want {
		t.Errorf("commit %q, want HEAD %q (%s)", got.Commit, want, out)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT`).MatchString(got.CommitTime) {
		t.Errorf("commit_time %q is not RFC 3339", got.CommitTime)
	}
	// Go stamps a build in a checkout with the tag of HEAD, or a
	// pseudo-version naming the commit.
	if !strings.Contains(got.Version, got.Commit[:min(12, len(got.Commit))]) && !regexp.MustCompile(`^v\d+\.\d+\.\d+`).MatchString(got.Version) {
		t.Errorf("version %q names neither a tag nor the commit", got.Version)
	}
	if got.Go != runtime.Version() || got.OS != runtime.GOOS || got.Arch != runtime.GOARCH {
		t.Errorf("got %+v", got)
	}
}
