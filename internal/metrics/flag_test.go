package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ddbsync/ddbsync/internal/cmd/root"
	"github.com/ddbsync/ddbsync/internal/cmdutil"
	"github.com/ddbsync/ddbsync/internal/iostreams"
	"github.com/ddbsync/ddbsync/internal/metrics"
)

func runRoot(args ...string) (int, string) {
	ios, _, _, errOut := iostreams.Test()
	code := root.Run(context.Background(), root.NewFactory(ios), args)
	return code, errOut.String()
}

// A bad or busy --metrics-addr is a usage error before any work, and the
// server is gone when the command returns.
func TestMetricsAddrFlag(t *testing.T) {
	code, errOut := runRoot("backfill", "--metrics-addr", "9090", "--input-table", "orders", "--output-table", "orders2")
	if code != cmdutil.ExitUsage || !strings.Contains(errOut, `--metrics-addr "9090" is not HOST:PORT`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}

	busy, err := metrics.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := busy.Addr()
	code, errOut = runRoot("diff", "--metrics-addr", addr, "-m", "us-east-1:orders", "-s", "eu-west-1:orders")
	if code != cmdutil.ExitUsage || !strings.Contains(errOut, "cannot listen") {
		t.Errorf("busy address: exit %d, stderr %q", code, errOut)
	}
	busy.Close()

	// The address is free again: a run that fails validation after the
	// server started must release it.
	code, _ = runRoot("backfill", "--metrics-addr", addr) // no tables: exit 2
	if code != cmdutil.ExitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := metrics.Listen(addr)
		if err == nil {
			s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still in use 30s after the command returned: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Commands that copy nothing never listen.
	code, errOut = runRoot("version", "--metrics-addr", "9090")
	if code != 0 {
		t.Errorf("version with --metrics-addr: exit %d %s", code, errOut)
	}
}
