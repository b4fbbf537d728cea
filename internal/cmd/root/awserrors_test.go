package root

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cliResult is the outcome of one ddbsync process.
type cliResult struct {
	code        int
	out, errOut string
}

// runCLI runs this test binary as ddbsync in an empty environment: HOME
// is an empty directory, no AWS_* variable is set but those given, and
// the instance metadata service is disabled (fast and offline).
func runCLI(t *testing.T, home string, env []string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{
		cliEnv + "=1",
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_EC2_METADATA_DISABLED=true",
	}, env...)
	cmd.Dir = t.TempDir()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{code, out.String(), errOut.String()}
}

var backfillOrders = []string{"backfill", "--input-table", "orders", "--input-region", "us-east-1", "--output-table", "orders2", "--no-status"}

// sdkInternals are bits of the SDK's error chain a user should not have
// to read (unless --log-level debug).
var sdkInternals = []string{"operation error", "get identity", "IMDS", "ec2imds", "StatusCode", "RequestID", "failed to refresh cached credentials"}

func assertClean(t *testing.T, r cliResult, secrets ...string) {
	t.Helper()
	for _, s := range sdkInternals {
		if strings.Contains(r.out+r.errOut, s) {
			t.Errorf("output shows SDK internals (%q):\nstdout:\n%s\nstderr:\n%s", s, r.out, r.errOut)
		}
	}
	for _, s := range secrets {
		if strings.Contains(r.out+r.errOut, s) {
			t.Errorf("output shows the secret %q:\nstdout:\n%s\nstderr:\n%s", s, r.out, r.errOut)
		}
	}
	if lines := strings.Count(strings.TrimSpace(r.errOut), "\n") + 1; lines > 2 {
		t.Errorf("the message takes %d lines, want one or two:\n%s", lines, r.errOut)
	}
}

func assertContains(t *testing.T, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("output lacks %q:\n%s", w, s)
		}
	}
}

// The first error a new user meets: no credentials anywhere.
func TestNoCredentialsAnywhere(t *testing.T) {
	home := t.TempDir()
	r := runCLI(t, home, nil, append(backfillOrders, "--state-dir", t.TempDir())...)
	if r.code != 2 {
		t.Errorf("exit %d, want 2 (nothing was read or written)", r.code)
	}
	assertContains(t, r.errOut, "no AWS credentials found for table orders", "environment", "~/.aws/config", "SSO", "instance role",
		"aws configure", "aws sso login", "AWS_PROFILE", "--endpoint-url")
	assertClean(t, r)
	if r.out != "" {
		t.Errorf("stdout: %q", r.out)
	}

	// --log-level debug shows the SDK's own error too.
	r = runCLI(t, home, nil, append(backfillOrders, "--state-dir", t.TempDir(), "--log-level", "debug")...)
	if r.code != 2 || !strings.Contains(r.errOut, "Cause: ") || !strings.Contains(r.errOut, "ec2imds") {
		t.Errorf("--log-level debug: exit %d, stderr:\n%s", r.code, r.errOut)
	}
}

// With an explicit endpoint (DynamoDB Local), no credentials are needed:
// the run goes on to the endpoint, which here has no such table.
func TestNoCredentialsWithEndpoint(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got = req.Header.Clone()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Cannot do operations on a non-existent table"}`)
	}))
	defer srv.Close()
	r := runCLI(t, t.TempDir(), nil, append(backfillOrders, "--state-dir", t.TempDir(), "--endpoint-url", srv.URL)...)
	if r.code != 2 || !strings.Contains(r.errOut, "table orders does not exist") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.errOut)
	}
	if !strings.Contains(got.Get("Authorization"), "Credential=ddbsynclocal/") {
		t.Errorf("request not signed with the placeholder credentials: %q", got.Get("Authorization"))
	}
}

// An SSO profile whose cached token has expired.
func TestSSOSessionExpired(t *testing.T) {
	home := t.TempDir()
	const startURL = "https://example.awsapps.com/start"
	const token = "SSO-ACCESS-TOKEN-SECRET"
	writeFile(t, filepath.Join(home, ".aws", "config"), "[profile work]\nsso_start_url = "+startURL+"\nsso_region = us-east-1\nsso_account_id = 111111111111\nsso_role_name = ReadOnly\nregion = us-east-1\n")
	sum := sha1.Sum([]byte(startURL))
	writeFile(t, filepath.Join(home, ".aws", "sso", "cache", hex.EncodeToString(sum[:])+".json"),
		`{"accessToken":"`+token+`","expiresAt":"2020-01-01T00:00:00Z","region":"us-east-1","startUrl":"`+startURL+`"}`)
	r := runCLI(t, home, []string{"AWS_PROFILE=work"}, append(backfillOrders, "--state-dir", t.TempDir(), "--endpoint-url", "http://127.0.0.1:1")...)
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	assertContains(t, r.errOut, "SSO session for table orders has expired", "aws sso login")
	assertClean(t, r, token)
}

// A role the credentials may not assume (STS answers AccessDenied).
func TestRoleCannotBeAssumed(t *testing.T) {
	const keyID, secret = "AKIDEXAMPLEKEYID4242", "wJalrXUtnFEMI-secret-value"
	var stsCalls int
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		stsCalls++
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::111111111111:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/ddbsync-read</Message></Error><RequestId>r1</RequestId></ErrorResponse>`)
	}))
	defer sts.Close()
	env := []string{"AWS_ACCESS_KEY_ID=" + keyID, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_ENDPOINT_URL_STS=" + sts.URL}
	r := runCLI(t, t.TempDir(), env, append(backfillOrders, "--state-dir", t.TempDir(), "--max-retries", "0",
		"--input-role-arn", "arn:aws:iam::222222222222:role/ddbsync-read", "--endpoint-url", "http://127.0.0.1:1")...)
	if stsCalls == 0 {
		t.Fatalf("STS was never asked (exit %d):\n%s", r.code, r.errOut)
	}
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	assertContains(t, r.errOut, "cannot assume the IAM role for table orders: AccessDenied: User: arn:aws:iam::111111111111:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/ddbsync-read", "trust policy")
	assertClean(t, r, keyID, secret)
}

// AccessDenied on a table: the action and the table are named, and
// `ddbsync iam-policy` is pointed to. Denied before any work (the first
// DescribeTable) is exit 2; denied once the copy has begun (Scan), exit 3.
func TestAccessDeniedOnTable(t *testing.T) {
	const keyID, secret = "AKIDEXAMPLEKEYID4242", "wJalrXUtnFEMI-secret-value"
	for _, tc := range []struct {
		deny   string
		code   int
		action string
	}{
		{"DescribeTable", 2, "dynamodb:DescribeTable"},
		{"Scan", 3, "dynamodb:Scan"},
	} {
		t.Run(tc.deny, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				_, _ = io.Copy(io.Discard, req.Body)
				op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				if op == tc.deny {
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#AccessDeniedException","message":"User: arn:aws:iam::111111111111:user/bob is not authorized to perform: dynamodb:`+op+` on resource: arn:aws:dynamodb:us-east-1:111111111111:table/orders because no identity-based policy allows the dynamodb:`+op+` action"}`)
					return
				}
				switch op {
				case "DescribeTable":
					io.WriteString(w, `{"Table":{"TableName":"orders","TableStatus":"ACTIVE","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"ItemCount":0,"TableSizeBytes":0,"BillingModeSummary":{"BillingMode":"PAY_PER_REQUEST"}}}`)
				default:
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"unexpected `+op+`"}`)
				}
			}))
			defer srv.Close()
			env := []string{"AWS_ACCESS_KEY_ID=" + keyID, "AWS_SECRET_ACCESS_KEY=" + secret}
			r := runCLI(t, t.TempDir(), env, append(backfillOrders, "--state-dir", t.TempDir(), "--endpoint-url", srv.URL, "--backfill-total-segments", "1")...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			assertContains(t, r.errOut, "access denied: "+tc.action+" on table orders is not allowed", "ddbsync iam-policy backfill")
			for _, s := range []string{keyID, secret} {
				if strings.Contains(r.out+r.errOut, s) {
					t.Errorf("output shows %q", s)
				}
			}
			if strings.Contains(r.errOut, "StatusCode") || strings.Contains(r.errOut, "RequestID") {
				t.Errorf("stderr shows SDK internals:\n%s", r.errOut)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// AWS_PROFILE naming a profile that is not there is named in the message.
func TestUnknownProfileFromEnvironment(t *testing.T) {
	r := runCLI(t, t.TempDir(), []string{"AWS_PROFILE=nope"}, append(backfillOrders, "--state-dir", t.TempDir())...)
	if r.code != 2 || !strings.Contains(r.errOut, `AWS profile "nope" is not in the shared config`) {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.errOut)
	}
}
