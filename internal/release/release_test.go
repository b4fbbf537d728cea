package release

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.yaml.in/yaml/v3"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// repoRoot is two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// versionSymbol is the -X target of the release version in the build script.
func versionSymbol(t *testing.T, text, where string) string {
	t.Helper()
	m := regexp.MustCompile(`-X (\S+)=`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s sets no version with -X", where)
	}
	return m[1]
}

// TestStaticBinary builds the binary exactly as the Dockerfile does
// (scripts/build-static.sh, CGO_ENABLED=0), checks that it is statically
// linked, and runs it: `version` reports the version given to the build and
// the commit, and a backfill copies a table on DynamoDB Local, its logs
// going to a --log-file.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped under -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux; the ELF checks need a linux binary")
	}
	endpoint := ddbtest.Endpoint(t)
	bin := filepath.Join(t.TempDir(), "ddbsync")
	const version = "v0.0.0-releasetest"
	build := exec.Command(filepath.Join(repoRoot(t), "scripts", "build-static.sh"), bin, version)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-static.sh: %v\n%s", err, out)
	}

	// Static: no program interpreter, no shared libraries.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: not statically linked", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}

	out := runBin(t, bin, nil, "version", "--output", "json")
	var info struct {
		Version, Commit string
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if info.Version != version {
		t.Errorf("version %q, want %q (the -X target of build-static.sh does not take)", info.Version, version)
	}
	if head, err := exec.Command("git", "-C", repoRoot(t), "rev-parse", "HEAD").Output(); err == nil {
		if want := strings.TrimSpace(string(head)); info.Commit != want {
			t.Errorf("commit %q, want HEAD %q", info.Commit, want)
		}
	}

	c, _ := ddbtest.Clients(t)
	src, dst := ddbtest.Name(t, "static-src"), ddbtest.Name(t, "static-dst")
	ddbtest.CreateTable(t, c, src, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, dst, ddbtest.StringKey)
	var items []map[string]types.AttributeValue
	for i := range 60 {
		items = append(items, map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("k%03d", i)},
			"n":  &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
		})
	}
	ddbtest.PutItems(t, c, src, items)
	logFile := filepath.Join(t.TempDir(), "ddbsync.log")
	out = runBin(t, bin, nil, "backfill", "--endpoint-url", endpoint, "--no-status", "--state-dir", t.TempDir(),
		"--input-table", src, "--output-table", dst, "--log-file", logFile)
	ddbtest.AssertSameItems(t, c, src, dst, "pk", "")
	// --log-file: the logs are in the file, standard output is empty.
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if out != "" || !strings.Contains(string(logs), "["+src+"] ⇨ ["+dst+"]: ") {
		t.Errorf("--log-file: stdout %q, file:\n%s", out, logs)
	}
}

// runBin runs the binary with the test's environment (ddbtest.Main's dummy
// credentials) and fails the test unless it exits 0.
func runBin(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ddbsync %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestBuildsAgree checks that GoReleaser's archives, the build script and
// the Dockerfile build the same binary: no cgo, -trimpath, the version
// through the same -X target (TestStaticBinary shows that it takes), the
// platforms of the release.
func TestBuildsAgree(t *testing.T) {
	script := readFile(t, "scripts/build-static.sh")
	symbol := versionSymbol(t, script, "scripts/build-static.sh")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=auto", "./cmd/ddbsync"} {
		if !strings.Contains(script, want) {
			t.Errorf("scripts/build-static.sh lacks %s", want)
		}
	}

	var cfg struct {
		Version int `yaml:"version"`
		Builds  []struct {
			Main    string   `yaml:"main"`
			Env     []string `yaml:"env"`
			Flags   []string `yaml:"flags"`
			Ldflags []string `yaml:"ldflags"`
			Goos    []string `yaml:"goos"`
			Goarch  []string `yaml:"goarch"`
		} `yaml:"builds"`
		Checksum struct {
			NameTemplate string `yaml:"name_template"`
		} `yaml:"checksum"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, ".goreleaser.yaml")), &cfg); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if cfg.Version != 2 || len(cfg.Builds) != 1 {
		t.Fatalf(".goreleaser.yaml: version %d, %d builds; want version 2 and one build", cfg.Version, len(cfg.Builds))
	}
	b := cfg.Builds[0]
	if b.Main != "./cmd/ddbsync" || !slices.Contains(b.Env, "CGO_ENABLED=0") || !slices.Contains(b.Flags, "-trimpath") || !slices.Contains(b.Flags, "-buildvcs=auto") {
		t.Errorf(".goreleaser.yaml build: main %q env %v flags %v; want ./cmd/ddbsync, CGO_ENABLED=0, -trimpath, -buildvcs=auto", b.Main, b.Env, b.Flags)
	}
	if got := versionSymbol(t, strings.Join(b.Ldflags, " "), ".goreleaser.yaml"); got != symbol {
		t.Errorf(".goreleaser.yaml sets the version in %s, build-static.sh in %s", got, symbol)
	}
	slices.Sort(b.Goos)
	slices.Sort(b.Goarch)
	if !slices.Equal(b.Goos, []string{"darwin", "linux", "windows"}) || !slices.Equal(b.Goarch, []string{"amd64", "arm64"}) {
		t.Errorf(".goreleaser.yaml platforms %v × %v", b.Goos, b.Goarch)
	}
	if cfg.Checksum.NameTemplate == "" {
		t.Error(".goreleaser.yaml writes no checksums")
	}

	docker := readFile(t, "Dockerfile")
	for _, re := range []string{
		`(?m)^RUN .*\./scripts/build-static\.sh /out/ddbsync `,
		`(?m)^COPY --from=build /out/ddbsync /usr/local/bin/ddbsync$`,
		`(?m)^ENTRYPOINT \["/usr/local/bin/ddbsync"\]$`,
		`(?m)^USER nonroot`,
		`(?m)^FROM \S*distroless/static\S*:nonroot$`, // CA certificates, non-root user
	} {
		if !regexp.MustCompile(re).MatchString(docker) {
			t.Errorf("Dockerfile has no line matching %s", re)
		}
	}
}
