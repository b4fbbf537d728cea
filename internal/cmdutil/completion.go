package cmdutil

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	smithylogging "github.com/aws/smithy-go/logging"
	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/pkg/creds"
	"github.com/ddbsync/ddbsync/pkg/plan"
)

// CompletionTimeout bounds a completion that asks AWS for table names: a
// shell waiting on a Tab key must get an answer, even an empty one.
const CompletionTimeout = 2 * time.Second

// maxCompletionPages bounds the ListTables pages one completion reads
// (100 names a page).
const maxCompletionPages = 10

// tableFlag says where a table flag's region, profile and endpoint come
// from on the same command line; later names are fallbacks.
type tableFlag struct {
	region, profile, endpoint []string
	regionPrefix              bool // REGION:TABLE (diff's --master, --slave)
}

var tableFlags = map[string]tableFlag{
	"input-table":      {region: []string{"input-region"}, profile: []string{"input-profile"}, endpoint: []string{"input-endpoint-url"}},
	"output-table":     {region: []string{"output-region", "input-region"}, profile: []string{"output-profile", "input-profile"}, endpoint: []string{"output-endpoint-url", "input-endpoint-url"}},
	"checkpoint-table": {region: []string{"input-region"}, profile: []string{"input-profile"}},
	"master":           {profile: []string{"profile"}, regionPrefix: true},
	"slave":            {profile: []string{"slave-profile", "profile"}, regionPrefix: true},
}

var profileFlags = []string{"profile", "input-profile", "output-profile", "slave-profile"}

// RegisterAWSCompletions makes shells complete, on every command of the
// tree that has them, the table flags from ListTables (with the region,
// profile and endpoint already on the command line) and the profile flags
// from the AWS config and credentials files.
func RegisterAWSCompletions(root *cobra.Command, f *Factory) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, tf := range tableFlags {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, completeTables(f, tf))
			}
		}
		for _, name := range profileFlags {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, completeProfiles)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func flagValue(cmd *cobra.Command, names []string) string {
	for _, n := range names {
		if fl := cmd.Flags().Lookup(n); fl != nil && fl.Value.String() != "" {
			return fl.Value.String()
		}
	}
	return ""
}

func completeTables(f *Factory, tf tableFlag) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		t := plan.Table{
			Region:      flagValue(cmd, tf.region),
			Profile:     flagValue(cmd, tf.profile),
			EndpointURL: flagValue(cmd, tf.endpoint),
		}
		prefix := toComplete
		if tf.regionPrefix {
			region, table, ok := strings.Cut(toComplete, ":")
			if !ok {
				// Offer the default region of the profile or environment.
				if r := defaultRegion(cmd.Context(), f, t); r != "" && strings.HasPrefix(r, toComplete) {
					return []string{r + ":"}, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			t.Region, prefix = region, table
		}
		names := listTables(cmd.Context(), f, t, prefix)
		if tf.regionPrefix {
			for i, n := range names {
				names[i] = t.Region + ":" + n
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completionProvider is a credentials provider that fails fast and
// quietly: no retries, no MFA prompt (a completion cannot ask), no SDK
// warnings on the terminal. Why nothing was offered goes to cobra's
// BASH_COMP_DEBUG_FILE.
func completionProvider(f *Factory) *creds.Provider {
	opts := creds.Options{MaxRetries: -1, EndpointURL: f.Globals.EndpointURL, Logger: smithylogging.Nop{}}
	if f.CredsOptions != nil {
		f.CredsOptions(&opts)
	}
	return creds.New(opts)
}

func defaultRegion(ctx context.Context, f *Factory, t plan.Table) string {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, CompletionTimeout)
	defer cancel()
	c, err := completionProvider(f).For(ctx, t)
	if err != nil {
		return ""
	}
	return c.Region
}

// listTables returns the table names starting with prefix, or nothing
// when AWS cannot be reached within CompletionTimeout.
func listTables(ctx context.Context, f *Factory, t plan.Table, prefix string) []string {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, CompletionTimeout)
	defer cancel()
	c, err := completionProvider(f).For(ctx, t)
	if err != nil {
		cobra.CompDebugln("clients: "+err.Error(), false)
		return nil
	}
	var names []string
	p := dynamodb.NewListTablesPaginator(c.DynamoDB, &dynamodb.ListTablesInput{})
	for page := 0; p.HasMorePages() && page < maxCompletionPages; page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			cobra.CompDebugln("ListTables: "+err.Error(), false)
			return nil
		}
		for _, n := range out.TableNames {
			if strings.HasPrefix(n, prefix) {
				names = append(names, n)
			}
		}
	}
	return names
}

func completeProfiles(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	var names []string
	for _, n := range ProfileNames() {
		if strings.HasPrefix(n, toComplete) {
			names = append(names, n)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// ProfileNames lists the AWS profiles of the shared config file
// ([default], [profile NAME]; AWS_CONFIG_FILE or ~/.aws/config) and the
// shared credentials file ([NAME]; AWS_SHARED_CREDENTIALS_FILE or
// ~/.aws/credentials), sorted, without duplicates. Only section names are
// read: no value of either file is kept.
func ProfileNames() []string {
	home, _ := os.UserHomeDir()
	path := func(env, def string) string {
		if p := os.Getenv(env); p != "" {
			return p
		}
		if home == "" {
			return ""
		}
		return filepath.Join(home, ".aws", def)
	}
	var names []string
	for _, s := range sections(path("AWS_CONFIG_FILE", "config")) {
		switch {
		case s == "default":
			names = append(names, s)
		case strings.HasPrefix(s, "profile "):
			names = append(names, strings.TrimSpace(strings.TrimPrefix(s, "profile ")))
		}
		// [sso-session x], [services x] are not profiles.
	}
	names = append(names, sections(path("AWS_SHARED_CREDENTIALS_FILE", "credentials"))...)
	slices.Sort(names)
	return slices.Compact(names)
}

// sections returns the [section] names of an INI file.
func sections(path string) []string {
	if path == "" {
		return nil
	}
	file, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer file.Close()
	var out []string
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			if name := strings.TrimSpace(line[1 : len(line)-1]); name != "" {
				out = append(out, name)
			}
		}
	}
	return out
}
