package creds

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"

	"github.com/ddbsync/ddbsync/pkg/plan"
	ddbretry "github.com/ddbsync/ddbsync/pkg/retry"
)

// Recognisable secrets: none of them may ever appear in an error.
const (
	envAccessKey    = "AKIDLEAKCHECKENVKEY1"
	envSecretKey    = "leakCheckSecretKeyFromEnvironment0001"
	envSessionToken = "leakCheckSessionTokenFromEnvironment0001"
	stsAccessKey    = "ASIALEAKCHECKSTSKEY1"
	stsSecretKey    = "leakCheckSecretKeyFromSTS000000000000001"
	stsSessionToken = "leakCheckSessionTokenFromSTS0001"
	mfaCode         = "493817"
)

// fakeAWS answers STS and DynamoDB requests in-process: it is used as the
// HTTP client, so no request ever leaves the test, whatever host the SDK
// picks. Every request is recorded.
type fakeAWS struct {
	mu       sync.Mutex
	requests []recorded
	// ddb answers a DynamoDB request (X-Amz-Target); nil answers ListTables.
	ddb func(n int, target string) (int, string)
	// sts answers an AssumeRole request; nil answers with credentials.
	sts      func(form url.Values) (int, string)
	ddbCalls int
}

type recorded struct {
	Host, Target, Auth, Token string
	Form                      url.Values
}

func (f *fakeAWS) Do(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	r := recorded{Host: req.URL.Host, Target: req.Header.Get("X-Amz-Target"), Auth: req.Header.Get("Authorization"), Token: req.Header.Get("X-Amz-Security-Token")}
	rec := httptest.NewRecorder()
	if r.Target == "" { // STS: a form POST
		r.Form, _ = url.ParseQuery(string(body))
		code, resp := http.StatusOK, assumeRoleXML
		if f.sts != nil {
			code, resp = f.sts(r.Form)
		}
		rec.Header().Set("Content-Type", "text/xml")
		rec.WriteHeader(code)
		io.WriteString(rec, resp)
	} else {
		f.mu.Lock()
		f.ddbCalls++
		n := f.ddbCalls
		f.mu.Unlock()
		code, resp := http.StatusOK, `{"TableNames":[]}`
		if f.ddb != nil {
			code, resp = f.ddb(n, r.Target)
		}
		rec.Header().Set("Content-Type", "application/x-amz-json-1.0")
		rec.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(resp))), 10))
		rec.WriteHeader(code)
		io.WriteString(rec, resp)
	}
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.mu.Unlock()
	res := rec.Result()
	res.Request = req
	return res, nil
}

func (f *fakeAWS) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

const assumeRoleXML = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>` + stsAccessKey + `</AccessKeyId>
      <SecretAccessKey>` + stsSecretKey + `</SecretAccessKey>
      <SessionToken>` + stsSessionToken + `</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::222222222222:assumed-role/writer/ddbsync</Arn>
      <AssumedRoleId>AROAEXAMPLE:ddbsync</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>`

const accessDeniedXML = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>MultiFactorAuthentication failed with invalid MFA one time pass code.</Message></Error>
  <RequestId>req-2</RequestId>
</ErrorResponse>`

const throttleJSON = `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}`

// isolate gives the test a clean AWS environment with recognisable
// static credentials and empty shared config files.
func isolate(t *testing.T, config string) {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(dir, "credentials")
	if err := os.WriteFile(credFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "AWS_ENDPOINT_URL_STS", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CA_BUNDLE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", envAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", envSecretKey)
	t.Setenv("AWS_SESSION_TOKEN", envSessionToken)
}

func listTables(t *testing.T, p *Provider, tbl plan.Table) (*Clients, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := p.For(ctx, tbl)
	if err != nil {
		return nil, err
	}
	_, err = c.DynamoDB.ListTables(ctx, &dynamodb.ListTablesInput{})
	return c, err
}

func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{envAccessKey, envSecretKey, envSessionToken, stsAccessKey, stsSecretKey, stsSessionToken, mfaCode} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains the secret %q: %s", what, secret, s)
		}
	}
}

func TestAssumeRoleSendsRoleExternalIDAndSessionName(t *testing.T) {
	isolate(t, "")
	fake := &fakeAWS{}
	p := New(Options{HTTPClient: fake, EndpointURL: "http://dynamodb.test:8000"})
	_, err := listTables(t, p, plan.Table{Table: "t1", Region: "eu-west-1", RoleARN: "arn:aws:iam::222222222222:role/writer", ExternalID: "ext-42"})
	if err != nil {
		t.Fatal(err)
	}
	reqs := fake.recorded()
	if len(reqs) != 2 {
		t.Fatalf("want an AssumeRole then a ListTables, got %d requests: %+v", len(reqs), reqs)
	}
	sts, ddb := reqs[0], reqs[1]
	for k, want := range map[string]string{"Action": "AssumeRole", "RoleArn": "arn:aws:iam::222222222222:role/writer", "ExternalId": "ext-42", "RoleSessionName": "ddbsync", "DurationSeconds": "3600"} {
		if got := sts.Form.Get(k); got != want {
			t.Errorf("AssumeRole %s = %q, want %q", k, got, want)
		}
	}
	if sts.Form.Has("SerialNumber") || sts.Form.Has("TokenCode") {
		t.Errorf("AssumeRole without mfa_serial sent MFA fields: %v", sts.Form)
	}
	if sts.Host != "sts.eu-west-1.amazonaws.com" {
		t.Errorf("STS went to %s; it must never go to the DynamoDB endpoint override", sts.Host)
	}
	if !strings.Contains(sts.Auth, "Credential="+envAccessKey+"/") {
		t.Errorf("AssumeRole not signed with the base credentials: %q", sts.Auth)
	}
	if ddb.Host != "dynamodb.test:8000" || ddb.Target != "DynamoDB_20120810.ListTables" {
		t.Errorf("DynamoDB request went to %s (%s)", ddb.Host, ddb.Target)
	}
	if !strings.Contains(ddb.Auth, "Credential="+stsAccessKey+"/") || ddb.Token != stsSessionToken {
		t.Errorf("DynamoDB request not signed with the assumed role's credentials: auth %q token %q", ddb.Auth, ddb.Token)
	}
}

func TestSTSEndpointOption(t *testing.T) {
	isolate(t, "")
	fake := &fakeAWS{}
	p := New(Options{HTTPClient: fake, STSEndpointURL: "http://sts.test:9000"})
	if _, err := listTables(t, p, plan.Table{Table: "t1", Region: "us-east-1", RoleARN: "arn:aws:iam::1:role/r"}); err != nil {
		t.Fatal(err)
	}
	if h := fake.recorded()[0].Host; h != "sts.test:9000" {
		t.Fatalf("STS host %s, want sts.test:9000", h)
	}
	// AWS_ENDPOINT_URL_STS is honoured too.
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://sts-env.test:9001")
	fake2 := &fakeAWS{}
	p2 := New(Options{HTTPClient: fake2, EndpointURL: "http://dynamodb.test:8000"})
	if _, err := listTables(t, p2, plan.Table{Table: "t1", Region: "us-east-1", RoleARN: "arn:aws:iam::1:role/r"}); err != nil {
		t.Fatal(err)
	}
	if h := fake2.recorded()[0].Host; h != "sts-env.test:9001" {
		t.Fatalf("STS host %s, want sts-env.test:9001 from AWS_ENDPOINT_URL_STS", h)
	}
}

func TestMFA(t *testing.T) {
	role := plan.Table{Table: "t1", Region: "us-east-1", RoleARN: "arn:aws:iam::1:role/r", MFASerial: "arn:aws:iam::1:mfa/alice"}
	t.Run("token provider called and code sent", func(t *testing.T) {
		isolate(t, "")
		fake := &fakeAWS{}
		var asked []string
		p := New(Options{HTTPClient: fake, MFAToken: func(serial string) (string, error) {
			asked = append(asked, serial)
			return " " + mfaCode + "\n", nil
		}})
		if _, err := listTables(t, p, role); err != nil {
			t.Fatal(err)
		}
		// A second client for the same table reuses the session: no new code.
		if _, err := listTables(t, p, role); err != nil {
			t.Fatal(err)
		}
		if len(asked) != 1 || asked[0] != role.MFASerial {
			t.Fatalf("MFAToken calls: %v, want one for %s", asked, role.MFASerial)
		}
		f := fake.recorded()[0].Form
		if f.Get("SerialNumber") != role.MFASerial || f.Get("TokenCode") != mfaCode {
			t.Fatalf("AssumeRole form %v lacks the serial and code", f)
		}
	})
	for _, bad := range []string{"12345", "1234567", "12a456", ""} {
		t.Run("code "+bad+" refused", func(t *testing.T) {
			isolate(t, "")
			fake := &fakeAWS{}
			p := New(Options{HTTPClient: fake, MFAToken: func(string) (string, error) { return bad, nil }})
			_, err := listTables(t, p, role)
			if err == nil || !strings.Contains(err.Error(), "the MFA code for arn:aws:iam::1:mfa/alice must be 6 digits") {
				t.Fatalf("err = %v", err)
			}
			var pe *plan.Error
			if !errors.As(err, &pe) {
				t.Errorf("a malformed code should be a usage error (exit 2), got %T", err)
			}
			if len(fake.recorded()) != 0 {
				t.Errorf("a request was sent with a malformed code: %+v", fake.recorded())
			}
			if bad != "" && strings.Contains(err.Error(), bad) {
				t.Errorf("error repeats the code: %v", err)
			}
		})
	}
	t.Run("asked for when the clients are built", func(t *testing.T) {
		isolate(t, "")
		fake := &fakeAWS{}
		asked := 0
		p := New(Options{HTTPClient: fake, MFAToken: func(string) (string, error) { asked++; return mfaCode, nil }})
		if _, err := p.For(context.Background(), role); err != nil {
			t.Fatal(err)
		}
		if asked != 1 || len(fake.recorded()) != 1 {
			t.Fatalf("For asked %d times and sent %d requests; want the code asked and the role assumed up front", asked, len(fake.recorded()))
		}
	})
	t.Run("role refused up front", func(t *testing.T) {
		isolate(t, "")
		fake := &fakeAWS{sts: func(url.Values) (int, string) { return http.StatusForbidden, accessDeniedXML }}
		p := New(Options{HTTPClient: fake, MFAToken: func(string) (string, error) { return mfaCode, nil }})
		_, err := p.For(context.Background(), role)
		if err == nil || err.Error() != "table t1: cannot assume role arn:aws:iam::1:role/r with MFA device arn:aws:iam::1:mfa/alice: AccessDenied: MultiFactorAuthentication failed with invalid MFA one time pass code." {
			t.Fatalf("err = %v", err)
		}
		assertNoSecrets(t, "error", err.Error())
	})
	t.Run("no token source", func(t *testing.T) {
		isolate(t, "")
		p := New(Options{HTTPClient: &fakeAWS{}})
		_, err := listTables(t, p, role)
		if err == nil || !strings.Contains(err.Error(), "an MFA code is needed for arn:aws:iam::1:mfa/alice, but nothing gives one") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("code rejected by STS does not leak", func(t *testing.T) {
		isolate(t, "")
		fake := &fakeAWS{sts: func(url.Values) (int, string) { return http.StatusForbidden, accessDeniedXML }}
		p := New(Options{HTTPClient: fake, MFAToken: func(string) (string, error) { return mfaCode, nil }})
		_, err := listTables(t, p, role)
		if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			t.Fatalf("err = %v", err)
		}
		assertNoSecrets(t, "error", err.Error())
		assertNoSecrets(t, "error (%#v)", fmt.Sprintf("%#v", err))
	})
}

func TestProfiles(t *testing.T) {
	config := "[profile known]\nregion = ap-southeast-2\naws_access_key_id = " + envAccessKey + "\naws_secret_access_key = " + envSecretKey + "\n"
	t.Run("not found", func(t *testing.T) {
		isolate(t, config)
		_, err := New(Options{HTTPClient: &fakeAWS{}}).For(context.Background(), plan.Table{Table: "t1", Profile: "missing"})
		var pe *plan.Error
		if !errors.As(err, &pe) {
			t.Fatalf("want a *plan.Error (exit 2), got %T %v", err, err)
		}
		if err.Error() != `table t1: AWS profile "missing" is not in the shared config or credentials file (see `+"`aws configure list-profiles`)" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("region from profile", func(t *testing.T) {
		isolate(t, config)
		fake := &fakeAWS{}
		c, err := listTables(t, New(Options{HTTPClient: fake}), plan.Table{Table: "t1", Profile: "known"})
		if err != nil {
			t.Fatal(err)
		}
		if c.Region != "ap-southeast-2" || fake.recorded()[0].Host != "dynamodb.ap-southeast-2.amazonaws.com" {
			t.Fatalf("region %s host %s", c.Region, fake.recorded()[0].Host)
		}
	})
	t.Run("no region", func(t *testing.T) {
		isolate(t, config)
		_, err := New(Options{HTTPClient: &fakeAWS{}}).For(context.Background(), plan.Table{Table: "t1"})
		var pe *plan.Error
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "table t1: no AWS region: set region in the plan, a --*-region flag, AWS_REGION") {
			t.Fatalf("err = %T %v", err, err)
		}
	})
	t.Run("AWS_REGION", func(t *testing.T) {
		isolate(t, config)
		t.Setenv("AWS_REGION", "ca-central-1")
		c, err := New(Options{HTTPClient: &fakeAWS{}}).For(context.Background(), plan.Table{Table: "t1"})
		if err != nil || c.Region != "ca-central-1" {
			t.Fatalf("%v %v", c, err)
		}
	})
}

func TestEndpointPrecedence(t *testing.T) {
	host := func(t *testing.T, o Options, tbl plan.Table) string {
		t.Helper()
		fake := &fakeAWS{}
		o.HTTPClient = fake
		c, err := listTables(t, New(o), tbl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Streams.ListStreams(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		r := fake.recorded()
		if want := strings.Replace(r[0].Host, "dynamodb.", "streams.dynamodb.", 1); r[1].Host != want {
			t.Errorf("DynamoDB went to %s but Streams to %s", r[0].Host, r[1].Host)
		}
		return r[0].Host
	}
	tbl := plan.Table{Table: "t1", Region: "us-east-1"}
	withEP := tbl
	withEP.EndpointURL = "http://table.test:1"
	global := Options{EndpointURL: "http://global.test:2"}

	isolate(t, "")
	if h := host(t, Options{}, tbl); h != "dynamodb.us-east-1.amazonaws.com" {
		t.Errorf("default: %s", h)
	}
	if h := host(t, global, tbl); h != "global.test:2" {
		t.Errorf("global endpoint: %s", h)
	}
	if h := host(t, global, withEP); h != "table.test:1" {
		t.Errorf("table endpoint must beat the global one: %s", h)
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://env.test:3")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "http://env.test:3")
	if h := host(t, Options{}, tbl); h != "env.test:3" {
		t.Errorf("AWS_ENDPOINT_URL_DYNAMODB must be honoured without an override: %s", h)
	}
	if h := host(t, global, tbl); h != "global.test:2" {
		t.Errorf("--endpoint-url must beat AWS_ENDPOINT_URL_DYNAMODB: %s", h)
	}
	if h := host(t, global, withEP); h != "table.test:1" {
		t.Errorf("the table's endpoint must beat AWS_ENDPOINT_URL_DYNAMODB: %s", h)
	}
}

func TestClientCache(t *testing.T) {
	isolate(t, "[profile a]\nregion = us-east-1\n[profile b]\nregion = us-east-1\n")
	p := New(Options{HTTPClient: &fakeAWS{}})
	get := func(tbl plan.Table) *Clients {
		c, err := p.For(context.Background(), tbl)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := plan.Table{Table: "t1", Region: "us-east-1"}
	c := get(base)
	other := base
	other.Table = "t2"
	if get(other) != c || get(base) != c {
		t.Errorf("another table with the same region, profile, role and endpoint must share the clients")
	}
	for name, mod := range map[string]func(*plan.Table){
		"region":      func(t *plan.Table) { t.Region = "eu-west-1" },
		"profile":     func(t *plan.Table) { t.Profile = "a" },
		"profile b":   func(t *plan.Table) { t.Profile = "b" },
		"role":        func(t *plan.Table) { t.RoleARN = "arn:aws:iam::1:role/r" },
		"external id": func(t *plan.Table) { t.RoleARN = "arn:aws:iam::1:role/r"; t.ExternalID = "x" },
		"endpoint":    func(t *plan.Table) { t.EndpointURL = "http://h:1" },
	} {
		tbl := base
		mod(&tbl)
		if get(tbl) == c {
			t.Errorf("%s: a different %s must get other clients", name, name)
		}
	}
	a1, a2 := base, base
	a1.Profile, a2.Profile = "a", "b"
	if get(a1) == get(a2) {
		t.Errorf("profiles a and b share clients")
	}
}

func TestRetryer(t *testing.T) {
	isolate(t, "")
	tbl := plan.Table{Table: "t1", Region: "us-east-1", EndpointURL: "http://dynamodb.test:1"}
	fast := func(o Options) Options { o.RetryBase, o.MaxBackoff = time.Microsecond, time.Microsecond; return o }

	t.Run("max attempts is max retries plus one", func(t *testing.T) {
		for _, maxRetries := range []int{-1, 3, 7} {
			fake := &fakeAWS{ddb: func(int, string) (int, string) { return http.StatusBadRequest, throttleJSON }}
			_, err := listTables(t, New(fast(Options{HTTPClient: fake, MaxRetries: maxRetries})), tbl)
			if err == nil || !strings.Contains(err.Error(), "ThrottlingException") {
				t.Fatalf("err = %v", err)
			}
			want := max(maxRetries, 0) + 1
			if fake.ddbCalls != want {
				t.Errorf("MaxRetries %d: %d attempts, want %d", maxRetries, fake.ddbCalls, want)
			}
		}
		if got := New(Options{}).Retryer().MaxAttempts(); got != DefaultMaxRetries+1 {
			t.Errorf("default MaxAttempts %d", got)
		}
	})

	t.Run("no retry quota under sustained throttling", func(t *testing.T) {
		// 40 calls, each throttled 9 times before it succeeds: 360
		// throttled attempts, far beyond the standard retryer's quota of
		// 500 tokens at 5 a retry.
		throttled := 0
		fake := &fakeAWS{ddb: func(n int, _ string) (int, string) {
			if n%10 != 0 {
				throttled++
				return http.StatusBadRequest, throttleJSON
			}
			return http.StatusOK, `{"TableNames":[]}`
		}}
		p := New(fast(Options{HTTPClient: fake, MaxRetries: 10}))
		c, err := p.For(context.Background(), tbl)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 40; i++ {
			if _, err := c.DynamoDB.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
				t.Fatalf("call %d after %d throttled attempts: %v", i, throttled, err)
			}
		}
		if throttled != 360 {
			t.Fatalf("throttled %d attempts, want 360", throttled)
		}
	})

	t.Run("control: the SDK default retryer runs out of quota", func(t *testing.T) {
		// Proves the test above can fail: the same load with the default
		// rate limiter ends in "retry quota exceeded".
		fake := &fakeAWS{ddb: func(n int, _ string) (int, string) {
			if n%10 != 0 {
				return http.StatusBadRequest, throttleJSON
			}
			return http.StatusOK, `{"TableNames":[]}`
		}}
		p := New(fast(Options{HTTPClient: fake, MaxRetries: 10}))
		c, err := p.For(context.Background(), tbl)
		if err != nil {
			t.Fatal(err)
		}
		std := retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 11
			o.Backoff = ddbretry.Backoff{Base: time.Microsecond, Max: time.Microsecond}
		})
		var lastErr error
		for i := 0; i < 40 && lastErr == nil; i++ {
			_, lastErr = c.DynamoDB.ListTables(context.Background(), &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) { o.Retryer = std })
		}
		if lastErr == nil || !strings.Contains(lastErr.Error(), "retry quota exceeded") {
			t.Fatalf("the default retryer did not run out of quota: %v", lastErr)
		}
	})

	t.Run("5xx retried, validation errors not", func(t *testing.T) {
		fake := &fakeAWS{ddb: func(n int, _ string) (int, string) {
			if n < 3 {
				return http.StatusInternalServerError, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"oops"}`
			}
			return http.StatusOK, `{"TableNames":[]}`
		}}
		if _, err := listTables(t, New(fast(Options{HTTPClient: fake, MaxRetries: 5})), tbl); err != nil || fake.ddbCalls != 3 {
			t.Fatalf("5xx: err %v after %d calls", err, fake.ddbCalls)
		}
		fake = &fakeAWS{ddb: func(int, string) (int, string) {
			return http.StatusBadRequest, `{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}`
		}}
		if _, err := listTables(t, New(fast(Options{HTTPClient: fake, MaxRetries: 5})), tbl); err == nil || fake.ddbCalls != 1 {
			t.Fatalf("validation: err %v after %d calls", err, fake.ddbCalls)
		}
	})
}

func TestNoSecretsInErrors(t *testing.T) {
	isolate(t, "")
	denied := `{"__type":"com.amazonaws.dynamodb.v20120810#UnrecognizedClientException","message":"The security token included in the request is invalid."}`
	fake := &fakeAWS{ddb: func(int, string) (int, string) { return http.StatusBadRequest, denied }}
	for _, tbl := range []plan.Table{
		{Table: "t1", Region: "us-east-1"},
		{Table: "t1", Region: "us-east-1", RoleARN: "arn:aws:iam::1:role/r", MFASerial: "arn:aws:iam::1:mfa/m"},
	} {
		_, err := listTables(t, New(Options{HTTPClient: fake, MFAToken: func(string) (string, error) { return mfaCode, nil }}), tbl)
		if err == nil {
			t.Fatal("no error")
		}
		assertNoSecrets(t, "error", err.Error())
		assertNoSecrets(t, "error", fmt.Sprintf("%+v", err))
	}
	// A token provider failing with its own error keeps the code out too.
	_, err := listTables(t, New(Options{HTTPClient: fake, MFAToken: func(string) (string, error) { return "", errors.New("no terminal") }}),
		plan.Table{Table: "t1", Region: "us-east-1", RoleARN: "arn:aws:iam::1:role/r", MFASerial: "arn:aws:iam::1:mfa/m"})
	if err == nil || !strings.Contains(err.Error(), "no terminal") {
		t.Fatalf("err = %v", err)
	}
	_ = aws.String
}

// badCRC answers DynamoDB with a wrong X-Amz-Crc32, which the SDK reports
// through its logger.
type badCRC struct{ fakeAWS }

func (b *badCRC) Do(req *http.Request) (*http.Response, error) {
	res, err := b.fakeAWS.Do(req)
	if res != nil && req.Header.Get("X-Amz-Target") != "" {
		res.Header.Set("X-Amz-Crc32", "1")
	}
	return res, err
}

func TestSDKWarningsGoToTheLogger(t *testing.T) {
	isolate(t, "")
	var mu sync.Mutex
	var got []string
	logger := logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(c)+": "+fmt.Sprintf(format, v...))
	})
	p := New(Options{HTTPClient: &badCRC{}, Logger: logger, MaxRetries: -1})
	_, _ = listTables(t, p, plan.Table{Table: "t1", Region: "us-east-1"})
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), "checksum") {
		t.Fatalf("the SDK's checksum warning did not reach Options.Logger: %q", got)
	}
}

// A role from a profile (role_arn + source_profile + mfa_serial) gets the
// MFA prompt, an hour-long session unless the profile says otherwise, and
// the profile's session name.
func TestProfileRole(t *testing.T) {
	config := "[profile base]\nregion = us-east-1\naws_access_key_id = " + envAccessKey + "\naws_secret_access_key = " + envSecretKey + "\n" +
		"[profile admin]\nregion = us-east-1\nsource_profile = base\nrole_arn = arn:aws:iam::3:role/admin\nmfa_serial = arn:aws:iam::3:mfa/bob\n" +
		"[profile long]\nregion = us-east-1\nsource_profile = base\nrole_arn = arn:aws:iam::3:role/long\nduration_seconds = 7200\n"
	isolate(t, config)
	fake := &fakeAWS{}
	var asked []string
	p := New(Options{HTTPClient: fake, EndpointURL: "http://dynamodb.test:1", MFAToken: func(s string) (string, error) { asked = append(asked, s); return mfaCode, nil }})
	if _, err := listTables(t, p, plan.Table{Table: "t1", Profile: "admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := listTables(t, p, plan.Table{Table: "t1", Profile: "long"}); err != nil {
		t.Fatal(err)
	}
	var forms []url.Values
	for _, r := range fake.recorded() {
		if r.Form != nil {
			forms = append(forms, r.Form)
			if r.Host == "dynamodb.test:1" {
				t.Errorf("STS of a profile's role went to the DynamoDB endpoint override")
			}
		}
	}
	if len(forms) != 2 || len(asked) != 1 || asked[0] != "arn:aws:iam::3:mfa/bob" {
		t.Fatalf("AssumeRole calls %v, MFA asked for %v", forms, asked)
	}
	if f := forms[0]; f.Get("RoleArn") != "arn:aws:iam::3:role/admin" || f.Get("SerialNumber") != "arn:aws:iam::3:mfa/bob" || f.Get("TokenCode") != mfaCode || f.Get("DurationSeconds") != "3600" {
		t.Errorf("profile admin: %v", f)
	}
	if f := forms[1]; f.Get("RoleArn") != "arn:aws:iam::3:role/long" || f.Get("DurationSeconds") != "7200" {
		t.Errorf("profile long: %v", f)
	}
}
