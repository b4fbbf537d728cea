// Package creds turns a plan table reference into configured SDK clients:
// region, shared-config profile, assumed role with external ID and MFA,
// endpoint override, and a retryer set up for hours-long copies. Clients
// are cached per distinct (region, profile, role, endpoint).
package creds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/ddbsync/ddbsync/pkg/plan"
	ddbretry "github.com/ddbsync/ddbsync/pkg/retry"
)

// Defaults of the retry settings.
const (
	DefaultMaxRetries = 10
	DefaultRetryBase  = 50 * time.Millisecond
	DefaultMaxBackoff = 20 * time.Second
	// SessionName is the role session name used for every assumed role.
	SessionName = "ddbsync"
	// DefaultRoleDuration is the assumed-role session length: one hour,
	// which every role allows (the SDK's default is 15 minutes).
	DefaultRoleDuration = time.Hour
)

// Options are the settings shared by every client of a run.
type Options struct {
	// MaxRetries is the number of retries after the first attempt of each
	// request (so MaxRetries+1 attempts). Zero means DefaultMaxRetries; use
	// a negative value for no retries.
	MaxRetries int
	// RetryBase is the backoff base: attempt n waits a random time up to
	// RetryBase·2ⁿ, capped at MaxBackoff.
	RetryBase  time.Duration
	MaxBackoff time.Duration
	// EndpointURL applies to every table that names none. It is used for
	// DynamoDB and DynamoDB Streams only, never for STS.
	EndpointURL string
	// STSEndpointURL overrides the STS endpoint used to assume roles
	// (tests, private VPC endpoints). Empty means the SDK's choice, which
	// honours AWS_ENDPOINT_URL_STS.
	STSEndpointURL string
	// RoleDuration is how long an assumed-role session lasts before it is
	// renewed (zero: DefaultRoleDuration). With MFA every renewal needs a
	// new code, so it should be as long as the role allows.
	RoleDuration time.Duration
	// MFAToken answers an MFA prompt for the given serial. It is called at
	// most once per role session. Nil means MFA cannot be used.
	MFAToken func(serial string) (string, error)
	// HTTPClient overrides the HTTP client (tests, fault injection).
	HTTPClient aws.HTTPClient
	// APIOptions are extra middleware for every client (tests).
	APIOptions []func(*middleware.Stack) error
	// Logger receives the SDK's own warnings (nil: the SDK's default,
	// which writes to the process's standard error).
	Logger logging.Logger
}

// Clients are the SDK clients for one table reference.
type Clients struct {
	Config   aws.Config
	DynamoDB *dynamodb.Client
	Streams  *dynamodbstreams.Client
	STS      *sts.Client
	// Region the clients talk to.
	Region string
	// Endpoint is the endpoint override in use, or "".
	Endpoint string
}

// Provider builds and caches clients.
type Provider struct {
	opts  Options
	http  aws.HTTPClient
	mu    sync.Mutex
	cache map[string]*entry
}

type entry struct {
	once    sync.Once
	clients *Clients
	err     error
}

// New returns a Provider with the given options.
func New(opts Options) *Provider {
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = DefaultRetryBase
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.RoleDuration <= 0 {
		opts.RoleDuration = DefaultRoleDuration
	}
	hc := opts.HTTPClient
	if hc == nil {
		// Many writers share one host: keep their connections alive
		// instead of the default 10 idle connections per host.
		hc = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 512
			tr.MaxIdleConnsPerHost = 512
		})
	}
	return &Provider{opts: opts, http: hc, cache: map[string]*entry{}}
}

// Retryer returns the retryer every client uses: the SDK's standard
// retryer (which retries throttling, 5xx and connection errors) with
// MaxRetries+1 attempts, exponential backoff with full jitter from
// RetryBase, and no retry quota, so sustained throttling slows a run down
// instead of failing it with "retry quota exceeded".
func (p *Provider) Retryer() aws.Retryer {
	return NewRetryer(p.opts.MaxRetries, p.opts.RetryBase, p.opts.MaxBackoff)
}

// NewRetryer builds the retryer described at Provider.Retryer.
func NewRetryer(maxRetries int, base, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxRetries + 1
		o.MaxBackoff = maxBackoff
		o.Backoff = ddbretry.Backoff{Base: base, Max: maxBackoff}
		o.RateLimiter = ratelimit.None
	})
}

// For returns the clients for a table reference.
func (p *Provider) For(ctx context.Context, t plan.Table) (*Clients, error) {
	endpoint := t.EndpointURL
	if endpoint == "" {
		endpoint = p.opts.EndpointURL
	}
	key := strings.Join([]string{t.Region, t.Profile, t.RoleARN, t.ExternalID, t.MFASerial, endpoint}, "\x00")
	p.mu.Lock()
	e, ok := p.cache[key]
	if !ok {
		e = &entry{}
		p.cache[key] = e
	}
	p.mu.Unlock()
	e.once.Do(func() {
		e.clients, e.err = p.build(ctx, t, endpoint)
	})
	return e.clients, e.err
}

func (p *Provider) build(ctx context.Context, t plan.Table, endpoint string) (*Clients, error) {
	cfg, err := p.loadConfig(ctx, t)
	if err != nil {
		return nil, err
	}
	stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
		if p.opts.STSEndpointURL != "" {
			o.BaseEndpoint = aws.String(p.opts.STSEndpointURL)
		}
	})
	if t.RoleARN != "" {
		if cfg.Credentials, err = p.assumeRole(ctx, stsClient, t); err != nil {
			return nil, err
		}
	}
	return newClients(cfg, stsClient, t, endpoint), nil
}

// loadConfig loads the shared AWS configuration for the table's region and
// profile, with our retryer, HTTP client and MFA prompt. The endpoint
// override is applied to the DynamoDB and Streams clients (newClients),
// not loaded into the configuration, so that STS (a profile's role, or
// ours) is never sent to a DynamoDB endpoint.
func (p *Provider) loadConfig(ctx context.Context, t plan.Table) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(p.Retryer),
		config.WithHTTPClient(p.http),
		config.WithAssumeRoleCredentialOptions(func(o *stscreds.AssumeRoleOptions) {
			// Roles assumed through a profile's role_arn/mfa_serial; the
			// profile's duration_seconds, when set, is kept.
			if o.Duration == 0 {
				o.Duration = p.opts.RoleDuration
			}
			if o.SerialNumber != nil {
				o.TokenProvider = p.tokenProvider(aws.ToString(o.SerialNumber))
			}
		}),
	}
	if len(p.opts.APIOptions) > 0 {
		opts = append(opts, config.WithAPIOptions(p.opts.APIOptions))
	}
	if p.opts.Logger != nil {
		opts = append(opts, config.WithLogger(p.opts.Logger))
	}
	if t.Region != "" {
		opts = append(opts, config.WithRegion(t.Region))
	}
	if t.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(t.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var noProfile config.SharedConfigProfileNotExistError
		if errors.As(err, &noProfile) {
			name := t.Profile
			if name == "" {
				name = noProfile.Profile // from AWS_PROFILE
			}
			return cfg, &plan.Error{Msg: fmt.Sprintf("table %s: AWS profile %q is not in the shared config or credentials file (see `aws configure list-profiles`)", t.Table, name)}
		}
		return cfg, &plan.Error{Msg: fmt.Sprintf("table %s: cannot load AWS configuration: %v", t.Table, err)}
	}
	if cfg.Region == "" {
		return cfg, &plan.Error{Msg: fmt.Sprintf("table %s: no AWS region: set region in the plan, a --*-region flag, AWS_REGION, or a region in the profile", t.Table)}
	}
	return cfg, nil
}

// assumeRole returns the credentials of the table's role (role_arn in the
// plan), assumed with the configuration's own credentials. With an MFA
// device, the code is asked for now, before any work and before a status
// display takes the terminal.
func (p *Provider) assumeRole(ctx context.Context, stsClient *sts.Client, t plan.Table) (aws.CredentialsProvider, error) {
	prov := stscreds.NewAssumeRoleProvider(stsClient, t.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = SessionName
		o.Duration = p.opts.RoleDuration
		if t.ExternalID != "" {
			o.ExternalID = aws.String(t.ExternalID)
		}
		if t.MFASerial != "" {
			o.SerialNumber = aws.String(t.MFASerial)
			o.TokenProvider = p.tokenProvider(t.MFASerial)
		}
	})
	cache := aws.NewCredentialsCache(prov)
	if t.MFASerial == "" {
		return cache, nil
	}
	if _, err := cache.Retrieve(ctx); err != nil {
		var te *tokenError
		if errors.As(err, &te) {
			return nil, te.err // the MFA code could not be had: say why
		}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return nil, &roleError{msg: fmt.Sprintf("table %s: cannot assume role %s with MFA device %s: %s: %s", t.Table, t.RoleARN, t.MFASerial, ae.ErrorCode(), ae.ErrorMessage()), err: err}
		}
		return nil, fmt.Errorf("table %s: cannot assume role %s with MFA device %s: %w", t.Table, t.RoleARN, t.MFASerial, err)
	}
	return cache, nil
}

// newClients makes the DynamoDB and Streams clients. An explicit endpoint
// (the table's, else --endpoint-url) beats the AWS_ENDPOINT_URL*
// variables, which the SDK applies otherwise.
func newClients(cfg aws.Config, stsClient *sts.Client, t plan.Table, endpoint string) *Clients {
	ddbOpt := func(*dynamodb.Options) {}
	streamsOpt := func(*dynamodbstreams.Options) {}
	if endpoint != "" {
		if t.RoleARN == "" && cfg.Credentials != nil {
			cfg.Credentials = aws.NewCredentialsCache(localFallback{next: cfg.Credentials})
		}
		cfg.BaseEndpoint = aws.String(endpoint)
		ddbOpt = func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(endpoint)
			// DynamoDB-compatible servers do not all send a correct
			// X-Amz-Crc32 (DynamoDB Local sends 0 on some error answers,
			// which makes the SDK log a warning on every such response).
			o.DisableValidateResponseChecksum = true
		}
		streamsOpt = func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(endpoint) }
	}
	return &Clients{
		Config:   cfg,
		DynamoDB: dynamodb.NewFromConfig(cfg, ddbOpt),
		Streams:  dynamodbstreams.NewFromConfig(cfg, streamsOpt),
		STS:      stsClient,
		Region:   cfg.Region,
		Endpoint: endpoint,
	}
}

// tokenProvider asks for an MFA code once per role session and never
// logs it.
func (p *Provider) tokenProvider(serial string) func() (string, error) {
	return func() (string, error) {
		if p.opts.MFAToken == nil {
			return "", &tokenError{&plan.Error{Msg: fmt.Sprintf("an MFA code is needed for %s, but nothing gives one (Options.MFAToken is not set)", serial)}}
		}
		code, err := p.opts.MFAToken(serial)
		if err != nil {
			return "", &tokenError{err}
		}
		code = strings.TrimSpace(code)
		if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
			return "", &tokenError{&plan.Error{Msg: fmt.Sprintf("the MFA code for %s must be 6 digits", serial)}}
		}
		return code, nil
	}
}

// tokenError marks an error of the MFA token provider in the SDK's chain
// of wrapped errors, so that it can be reported as itself.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// roleError is a refused AssumeRole, reported by its AWS error code and
// message without the SDK's request plumbing.
type roleError struct {
	msg string
	err error
}

func (e *roleError) Error() string { return e.msg }
func (e *roleError) Unwrap() error { return e.err }
