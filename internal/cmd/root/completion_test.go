package root

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

// complete runs `ddbsync __complete args…` (what the shell scripts call)
// through the root command and returns the candidates and the directive.
func complete(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	r := run(t, "", append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %v: exit %d\n%s", args, r.code, r.errOut)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

// Table flags complete from ListTables on DynamoDB Local, with the region
// and endpoint already on the command line.
func TestCompleteTables(t *testing.T) {
	endpoint := ddbtest.Endpoint(t)
	// DynamoDB Local keeps one database per access key: the one ddbtest
	// creates tables with.
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	c, _ := ddbtest.Clients(t)
	prefix := ddbtest.Name(t, "cmpl")
	a, b := prefix+"-a", prefix+"-b"
	ddbtest.CreateTable(t, c, a, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, b, ddbtest.StringKey)
	want := []string{a, b}

	for _, args := range [][]string{
		{"backfill", "--endpoint-url", endpoint, "--input-region", "us-east-1", "--input-table", prefix},
		{"sync", "--input-region", "us-east-1", "--input-endpoint-url", endpoint, "--output-table", prefix},
		{"stream", "--endpoint-url", endpoint, "--input-region", "us-east-1", "--checkpoint-table", prefix},
		{"iam-policy", "backfill", "--endpoint-url", endpoint, "--input-region", "us-east-1", "--input-table", prefix},
	} {
		got, directive := complete(t, args...)
		slices.Sort(got)
		if !slices.Equal(got, want) || directive != ":4" {
			t.Errorf("%v: got %q %s, want %q :4 (no file names)", args, got, directive, want)
		}
	}

	// diff's REGION:TABLE.
	got, _ := complete(t, "diff", "--endpoint-url", endpoint, "-m", "us-east-1:"+prefix)
	slices.Sort(got)
	if !slices.Equal(got, []string{"us-east-1:" + a, "us-east-1:" + b}) {
		t.Errorf("--master: %q", got)
	}
	got, _ = complete(t, "diff", "--endpoint-url", endpoint, "-m", "us-east-1:"+a, "-s", "us-east-1:"+prefix+"-b")
	if !slices.Equal(got, []string{"us-east-1:" + b}) {
		t.Errorf("--slave: %q", got)
	}
	// Before the colon, the default region is offered, with no space after.
	t.Setenv("AWS_REGION", "eu-west-3")
	got, directive := complete(t, "diff", "--endpoint-url", endpoint, "-s", "")
	if !slices.Equal(got, []string{"eu-west-3:"}) || directive != ":6" {
		t.Errorf("--slave before the colon: %q %s", got, directive)
	}
}

// A completion that cannot reach AWS offers nothing, quickly: an endpoint
// that never answers is given up after the completion timeout, an
// endpoint that refuses connections at once.
func TestCompleteTablesUnreachable(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	done := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		select {
		case <-req.Context().Done():
		case <-done:
		}
	}))
	defer hung.Close()
	defer close(done)
	for _, endpoint := range []string{hung.URL, "http://127.0.0.1:1"} {
		got, directive := complete(t, "backfill", "--endpoint-url", endpoint, "--input-region", "us-east-1", "--input-table", "")
		if len(got) != 0 || directive != ":4" {
			t.Errorf("%s: got %q %s, want nothing :4", endpoint, got, directive)
		}
	}
	// No region anywhere: nothing either.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	os.Unsetenv("AWS_REGION")
	os.Unsetenv("AWS_DEFAULT_REGION")
	if got, _ := complete(t, "backfill", "--endpoint-url", hung.URL, "--input-table", ""); len(got) != 0 {
		t.Errorf("no region: %q", got)
	}
}

// Profile flags complete from the section names of the AWS config and
// credentials files named by AWS_CONFIG_FILE and
// AWS_SHARED_CREDENTIALS_FILE.
func TestCompleteProfiles(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	credentials := filepath.Join(dir, "credentials")
	writeFile(t, config, "[default]\nregion = us-east-1\n\n[profile dev]\nsso_session = corp\n[sso-session corp]\nsso_start_url = https://x\n[services local]\n  [ profile  staging ]\n")
	writeFile(t, credentials, "[default]\naws_access_key_id = AKIDSECRET\n[prod]\naws_secret_access_key = verysecret\n")
	t.Setenv("AWS_CONFIG_FILE", config)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credentials)
	got, directive := complete(t, "diff", "--profile", "")
	if want := []string{"default", "dev", "prod", "staging"}; !slices.Equal(got, want) || directive != ":4" {
		t.Errorf("--profile: got %q %s, want %q :4", got, directive, want)
	}
	for _, args := range [][]string{
		{"backfill", "--input-profile", "d"},
		{"sync", "--output-profile", "d"},
		{"diff", "--slave-profile", "d"},
		{"iam-policy", "stream", "--input-profile", "d"},
	} {
		if got, _ := complete(t, args...); !slices.Equal(got, []string{"default", "dev"}) {
			t.Errorf("%v: %q", args, got)
		}
	}
}
