package diff_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

// diff --write-missing while the master deletes the items being repaired:
// a proxy in front of DynamoDB Local deletes each master item just before
// diff's PutItem of it reaches the slave (after diff's consistent
// re-read). No deleted item may stay on the slave, none counts as
// written, and the run does not claim the tables are in sync.
func TestWriteMissingWhileTheMasterDeletes(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	m, sl := ddbtest.Name(t, "race-m"), ddbtest.Name(t, "race-s")
	ddbtest.CreateTable(t, c, m, ddbtest.StringKey)
	ddbtest.CreateTable(t, c, sl, ddbtest.StringKey)
	const total, missing = 100, 20
	var mi, si []map[string]av
	for i := range total {
		it := item(fmt.Sprintf("k%03d", i), fmt.Sprint(i))
		mi = append(mi, it)
		if i >= missing {
			si = append(si, it)
		}
	}
	ddbtest.PutItems(t, c, m, mi)
	ddbtest.PutItems(t, c, sl, si)

	up, err := url.Parse(ddbtest.Endpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	var mu sync.Mutex
	deleted := map[string]bool{}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutItem") {
			var in struct {
				TableName string
				Item      map[string]struct{ S string }
			}
			if err := json.Unmarshal(body, &in); err == nil && in.TableName == sl {
				key := in.Item["pk"].S
				mu.Lock()
				if !deleted[key] {
					deleted[key] = true
					if _, err := c.DeleteItem(r.Context(), &dynamodb.DeleteItemInput{TableName: aws.String(m),
						Key: map[string]av{"pk": &types.AttributeValueMemberS{Value: key}}}); err != nil {
						t.Errorf("delete master item %s: %v", key, err)
					}
				}
				mu.Unlock()
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	code, out, errOut := runCLI(t, "--endpoint-url", proxy.URL, "-m", "us-east-1:"+m, "-s", "us-east-1:"+sl, "--write-missing", "--output", "json")
	if code != cmdutil.ExitDifferences {
		t.Fatalf("exit %d, want %d (repairs skipped: changed during diff); stdout:\n%s\nstderr:\n%s", code, cmdutil.ExitDifferences, out, errOut)
	}
	var sum struct {
		Raw []map[string]json.RawMessage `json:"slaves"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || len(sum.Raw) != 1 {
		t.Fatalf("summary %q: %v", out, err)
	}
	want := map[string]string{"scanned": "100", "matching": "80", "missing": "20", "written": "0", "skipped": "20", "errors": "0"}
	for k, v := range want {
		if got := string(sum.Raw[0][k]); got != v {
			t.Errorf("%s = %s, want %s; summary %s", k, got, v, out)
		}
	}
	if len(deleted) != missing {
		t.Fatalf("%d puts reached the slave, want %d", len(deleted), missing)
	}
	for _, it := range ddbtest.ScanAll(t, c, sl) {
		if key := it["pk"].(*types.AttributeValueMemberS).Value; deleted[key] {
			t.Errorf("item %s, deleted on the master during the repair, is on the slave", key)
		}
	}
}
