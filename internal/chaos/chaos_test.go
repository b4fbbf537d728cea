package chaos

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// shortSeeds run in make test (the short form: about a minute on an idle
// 2-core machine, three to four on a busy one): one process at a time
// (sync stopped at its start, sync --stream=false, then sync) and workers
// on a checkpoint table (backfill then sync, kills, SIGSTOP past the
// lease), streams enabled at creation and later.
var shortSeeds = []uint64{3, 4, 9}

// seeds returns the seeds to run and, for a run bounded by time, its
// duration (then the seeds go on from the first until it has passed).
func seeds(t *testing.T) ([]uint64, time.Duration) {
	if v := os.Getenv("DDBSYNC_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("DDBSYNC_CHAOS_SEED=%q: want a number", v)
		}
		return []uint64{n}, 0
	}
	v := os.Getenv("DDBSYNC_CHAOS_SEEDS")
	if v == "" {
		return shortSeeds, 0
	}
	first := uint64(1)
	if f := os.Getenv("DDBSYNC_CHAOS_FIRST_SEED"); f != "" {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("DDBSYNC_CHAOS_FIRST_SEED=%q: want a number", f)
		}
		first = n
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return []uint64{first}, d
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("DDBSYNC_CHAOS_SEEDS=%q: want a number of seeds or a duration such as 45m", v)
	}
	var s []uint64
	for i := range n {
		s = append(s, first+uint64(i))
	}
	return s, 0
}

// TestChaos runs seeded random schedules of backfill, sync and stream
// runs, killed, stopped, suspended and restarted, against a writer that
// never stops, and checks that no change is ever lost (package doc).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the randomized workflow test is skipped under -short")
	}
	ddbtest.Endpoint(t) // skip early without DynamoDB Local
	list, budget := seeds(t)
	bin := os.Getenv("DDBSYNC_CHAOS_BIN") // a binary built beforehand, e.g. from a clean checkout
	if bin == "" {
		bin = buildBinary(t, t.TempDir())
	}
	began := time.Now()
	var failed []uint64
	passed := 0
	run := func(seed uint64) {
		s := Generate(seed)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("schedule:\n%s", s)
			runSchedule(t, bin, s)
		})
		if ok {
			passed++
		} else {
			failed = append(failed, seed)
		}
	}
	if budget > 0 {
		for seed := list[0]; time.Since(began) < budget; seed++ {
			run(seed)
		}
	} else {
		for _, seed := range list {
			run(seed)
		}
	}
	t.Logf("%d seeds passed, %d failed %v, in %s", passed, len(failed), failed, time.Since(began).Round(time.Second))
	if len(failed) > 0 {
		t.Errorf("failed seeds (replay one with make chaos SEED=n): %v", failed)
	}
}

// The schedule is a function of the seed alone: a failure can be
// replayed.
func TestScheduleIsDeterministic(t *testing.T) {
	kinds := map[string]int{}
	for seed := uint64(1); seed <= 200; seed++ {
		a, b := Generate(seed).String(), Generate(seed).String()
		if a != b {
			t.Fatalf("seed %d gave two schedules:\n%s\n%s", seed, a, b)
		}
		s := Generate(seed)
		kinds[fmt.Sprintf("leased=%v", s.Leased)]++
		kinds[fmt.Sprintf("streamLater=%v", s.StreamLater)]++
		for _, st := range s.Steps {
			kinds[string(st.Act)]++
			if st.Act == ActRun && st.Signal != "" {
				kinds["interrupted "+string(st.At)]++
			}
		}
	}
	for _, k := range []string{"leased=true", "leased=false", "streamLater=true", "streamLater=false",
		"run", "pause", "start", "kill", "term", "suspend", "wait", "await-stream",
		"interrupted scan", "interrupted handover", "interrupted stream", "interrupted start"} {
		if kinds[k] == 0 {
			t.Errorf("no schedule of the first 200 seeds has %q: %v", k, kinds)
		}
	}
}
