package e2e

import (
	"testing"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// TestE2E builds the binary once and runs the process-level cases one
// after the other (several worker processes at once are load enough for a
// small machine).
func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level tests are skipped under -short")
	}
	ddbtest.Endpoint(t) // skip early without DynamoDB Local
	bin := buildBinary(t, t.TempDir())
	t.Run("BackfillWorkerKilled", func(t *testing.T) { testBackfillKill(t, bin) })
	t.Run("StreamWorkerKilled", func(t *testing.T) { testStreamKill(t, bin) })
	t.Run("SyncTwoWorkers", func(t *testing.T) { testSyncTwoWorkers(t, bin) })
	t.Run("Faults", func(t *testing.T) { testFaults(t, bin) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, bin) })
	t.Run("OutputJSON", func(t *testing.T) { testOutputJSON(t, bin) })
	t.Run("DryRun", func(t *testing.T) { testDryRun(t, bin) })
	t.Run("ETA", func(t *testing.T) { testETA(t, bin) })
}
