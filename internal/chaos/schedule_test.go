package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// longPause is longer than the margin before T0 from which sync's stream
// phase reads (2 minutes, and DynamoDB Local rounds record times down to
// the minute): changes older than that reach a later sync only through its
// own backfill.
const longPause = 150 * time.Second

// leaseDuration is every leased worker's --lease-duration: short, so that
// a worker suspended past its lease is taken over quickly.
const leaseDuration = 2 * time.Second

// A Schedule is what one seed does: the tables, then the steps, then the
// final catch-up and comparison.
type Schedule struct {
	Seed uint64
	// StreamLater: the input's stream is enabled with UpdateTable after the
	// initial items are loaded (otherwise at creation).
	StreamLater bool
	View        types.StreamViewType // the input stream's view type
	Items       int                  // initial items
	Segments    int                  // --backfill-total-segments
	ScanLimit   int                  // --scan-limit
	MaxWCU      int                  // --max-wcu (0: none), slows the backfill down
	// Faults is the rate of injected faults (throttling, 5xx, dropped
	// connections, partial batches) between the processes and DynamoDB
	// Local; 0 means no fault proxy.
	Faults float64
	// Leased: the runs share a checkpoint table (--checkpoint-table) and
	// several run at once; otherwise they run one at a time on one
	// --state-dir.
	Leased bool
	Steps  []Step
}

// Action is what a step does.
type Action string

const (
	// Without a checkpoint table (one process at a time).
	ActRun   Action = "run"   // run Cmd; Signal empty: until it exits, else interrupted
	ActPause Action = "pause" // nothing runs for D (the writer goes on)

	// With a checkpoint table (workers side by side).
	ActStart       Action = "start"        // start worker Worker running Cmd
	ActKill        Action = "kill"         // SIGKILL worker Worker
	ActTerm        Action = "term"         // SIGTERM worker Worker and wait for its exit
	ActSuspend     Action = "suspend"      // SIGSTOP worker Worker, SIGCONT after D
	ActWait        Action = "wait"         // let the workers run for D
	ActAwaitStream Action = "await-stream" // wait until a sync worker is in its stream phase
)

// Trigger names the moment an interrupted run is signalled, counted from
// a log line (or from the start).
type Trigger string

const (
	AtStart    Trigger = "start"    // the process started
	AtScan     Trigger = "scan"     // "Backfill started": during the scan
	AtHandover Trigger = "handover" // the backfill is complete: at the handover to the stream
	AtStream   Trigger = "stream"   // "streaming": mid-batch in the stream phase
)

// Step is one step of a schedule.
type Step struct {
	Act    Action
	Cmd    []string // ddbsync command and its own flags, e.g. sync --stream=false
	Worker int
	Signal string // KILL or TERM for an interrupted run
	At     Trigger
	D      time.Duration // delay after the trigger, pause, wait or suspension
	After  time.Duration // leased: the workers run this long before the signal
}

func (s Step) String() string {
	cmd := "`ddbsync " + strings.Join(s.Cmd, " ") + "`"
	switch s.Act {
	case ActRun:
		if s.Signal == "" {
			return "run " + cmd + " until it exits (exit 0)"
		}
		return fmt.Sprintf("run %s, SIG%s %s after %s", cmd, s.Signal, s.D, describe(s.At))
	case ActPause:
		if s.D >= longPause {
			return fmt.Sprintf("pause %s (only the writer runs; longer than sync's 2-minute margin before T0)", s.D)
		}
		return fmt.Sprintf("pause %s (only the writer runs)", s.D)
	case ActStart:
		return fmt.Sprintf("start worker w%d: %s", s.Worker, cmd)
	case ActKill:
		return fmt.Sprintf("after %s, SIGKILL w%d", s.After, s.Worker)
	case ActTerm:
		return fmt.Sprintf("after %s, SIGTERM w%d and wait for it to exit (exit 0 or 130)", s.After, s.Worker)
	case ActSuspend:
		return fmt.Sprintf("after %s, SIGSTOP w%d, SIGCONT %s later (lease %s)", s.After, s.Worker, s.D, leaseDuration)
	case ActWait:
		if s.D >= longPause {
			return fmt.Sprintf("let the workers run %s (longer than sync's 2-minute margin before T0)", s.D)
		}
		return fmt.Sprintf("let the workers run %s", s.D)
	case ActAwaitStream:
		return "wait until a sync worker is streaming (its copy is done)"
	}
	return string(s.Act)
}

func describe(t Trigger) string {
	switch t {
	case AtScan:
		return `"Backfill started" (during the scan)`
	case AtHandover:
		return "the backfill completed (at the handover)"
	case AtStream:
		return `"streaming" (mid-batch)`
	}
	return "the start"
}

// String is the readable schedule printed with every failure.
func (s *Schedule) String() string {
	var b strings.Builder
	setup := "streams enabled at creation"
	if s.StreamLater {
		setup = "streams enabled later, on the loaded table (UpdateTable)"
	}
	mode := "one process at a time on one --state-dir"
	if s.Leased {
		mode = fmt.Sprintf("workers on one --checkpoint-table, --lease-duration %s", leaseDuration)
	}
	segs := "no --backfill-total-segments"
	if s.Segments > 0 {
		segs = fmt.Sprintf("--backfill-total-segments %d", s.Segments)
	}
	fmt.Fprintf(&b, "seed %d: %s (%s); %d initial items; %s --scan-limit %d", s.Seed, setup, s.View, s.Items, segs, s.ScanLimit)
	if s.MaxWCU > 0 {
		fmt.Fprintf(&b, " --max-wcu %d", s.MaxWCU)
	}
	fmt.Fprintf(&b, "; %s", mode)
	if s.Faults > 0 {
		fmt.Fprintf(&b, "; %.0f%% of requests fail through the fault proxy", s.Faults*100)
	}
	b.WriteString("\n  0. the writer starts (puts, updates, deletes, delete+reinsert, bursts on one key) and runs until the final step\n")
	for i, st := range s.Steps {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, st)
	}
	if s.Leased {
		fmt.Fprintf(&b, "  %d. final: start worker w%d: `ddbsync sync`, stop the writer, wait until the output equals the input, SIGTERM every worker, compare\n", len(s.Steps)+1, s.finalWorker())
	} else {
		fmt.Fprintf(&b, "  %d. final: stop the writer, run `ddbsync sync --until-caught-up` until it exits (exit 0), compare\n", len(s.Steps)+1)
	}
	return b.String()
}

// finalWorker is the number of the worker started by the final step.
func (s *Schedule) finalWorker() int {
	n := 0
	for _, st := range s.Steps {
		if st.Act == ActStart {
			n++
		}
	}
	return n
}

// Generate makes the schedule of a seed. The same seed always gives the
// same schedule.
func Generate(seed uint64) *Schedule {
	r := rand.New(rand.NewPCG(seed, 0x6464627379e3))
	s := &Schedule{
		Seed:        seed,
		StreamLater: r.IntN(3) == 0,
		Items:       150 + r.IntN(350),
		Segments:    2 + r.IntN(5),
		ScanLimit:   []int{10, 25, 50}[r.IntN(3)],
		Leased:      r.IntN(2) == 0,
	}
	s.View = []types.StreamViewType{types.StreamViewTypeNewAndOldImages, types.StreamViewTypeNewAndOldImages,
		types.StreamViewTypeNewImage, types.StreamViewTypeKeysOnly, types.StreamViewTypeOldImage}[r.IntN(5)]
	if r.IntN(4) == 0 {
		s.Segments = 0
	}
	if r.IntN(2) == 0 {
		s.MaxWCU = 100 + r.IntN(200)
	}
	if r.IntN(5) == 0 {
		s.Faults = 0.03
	}
	long := Step{Act: ActPause, D: longPause}
	if s.Leased {
		s.Steps = leasedSteps(r)
		long.Act = ActWait
	} else {
		s.Steps = localSteps(r)
	}
	// Some schedules wait longer than sync's margin somewhere after the
	// first step: changes made just after an earlier backfill are then
	// older than the margin when a later sync begins.
	if r.IntN(4) == 0 {
		at := 1 + r.IntN(len(s.Steps))
		s.Steps = append(s.Steps[:at], append([]Step{long}, s.Steps[at:]...)...)
	}
	return s
}

func dur(r *rand.Rand, lo, hi time.Duration) time.Duration {
	d := lo + time.Duration(r.Int64N(int64(hi-lo)+1))
	return d.Round(10 * time.Millisecond)
}

func signal(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return "TERM"
	}
	return "KILL"
}

// localSteps: one process at a time, on one state directory. The first
// step is weighted towards the sequences that run a backfill before a
// sync (backfill then sync, sync --stream=false then sync).
func localSteps(r *rand.Rand) []Step {
	n := 1 + r.IntN(5)
	var steps []Step
	for i := range n {
		k := r.IntN(12)
		if i == 0 && r.IntN(2) == 0 {
			k = r.IntN(4)
		}
		var st Step
		switch k {
		case 0:
			st = Step{Act: ActRun, Cmd: []string{"backfill"}}
		case 1:
			st = Step{Act: ActRun, Cmd: []string{"sync", "--stream=false"}}
		case 2:
			st = Step{Act: ActRun, Cmd: []string{"backfill"}, Signal: signal(r), At: AtScan, D: dur(r, 0, 1500*time.Millisecond)}
		case 3:
			st = Step{Act: ActRun, Cmd: []string{"sync", "--stream=false"}, Signal: signal(r), At: AtScan, D: dur(r, 0, 1500*time.Millisecond)}
		case 4:
			st = Step{Act: ActRun, Cmd: []string{"sync"}, Signal: signal(r), At: AtScan, D: dur(r, 0, 1500*time.Millisecond)}
		case 5:
			st = Step{Act: ActRun, Cmd: []string{"sync"}, Signal: signal(r), At: AtHandover, D: dur(r, 0, 300*time.Millisecond)}
		case 6:
			st = Step{Act: ActRun, Cmd: []string{"sync"}, Signal: signal(r), At: AtStream, D: dur(r, 300*time.Millisecond, 4*time.Second)}
		case 7:
			st = Step{Act: ActRun, Cmd: []string{"sync", "--until-caught-up"}}
		case 8:
			st = Step{Act: ActRun, Cmd: []string{"stream"}, Signal: signal(r), At: AtStream, D: dur(r, 300*time.Millisecond, 4*time.Second)}
		case 9:
			st = Step{Act: ActRun, Cmd: []string{"stream", "--until-caught-up"}}
		case 10:
			st = Step{Act: ActRun, Cmd: []string{"sync"}, Signal: signal(r), At: AtStart, D: dur(r, 0, 3*time.Second)}
		default:
			st = Step{Act: ActPause, D: dur(r, 500*time.Millisecond, 4*time.Second)}
		}
		steps = append(steps, st)
	}
	return steps
}

// leasedSteps: workers side by side on one checkpoint table.
func leasedSteps(r *rand.Rand) []Step {
	type worker struct {
		cmd   string
		alive bool // started and neither killed nor stopped by the schedule
	}
	var ws []*worker
	var steps []Step
	synced := false   // a sync worker was started: no more backfill workers
	streamOK := false // stream workers join only once sync's copy is done
	start := func(cmd string) {
		steps = append(steps, Step{Act: ActStart, Cmd: []string{cmd}, Worker: len(ws)})
		ws = append(ws, &worker{cmd: cmd, alive: true})
		synced = synced || cmd == "sync"
	}
	alive := func() []int {
		var a []int
		for i, w := range ws {
			if w.alive {
				a = append(a, i)
			}
		}
		return a
	}
	syncAlive := func() bool {
		for _, w := range ws {
			if w.alive && w.cmd == "sync" {
				return true
			}
		}
		return false
	}
	if r.IntN(3) == 0 {
		start("backfill")
	} else {
		start("sync")
	}
	n := 3 + r.IntN(6)
	for range n {
		a := alive()
		switch k := r.IntN(10); {
		case k < 3 && len(a) < 3:
			// A backfill copies without looking at the stream: it joins
			// only before the sync (backfill then sync), never while sync
			// workers apply the stream, whose changes it could overwrite
			// with older copies (docs/plan.md).
			cmd := "sync"
			switch {
			case streamOK && r.IntN(3) == 0:
				cmd = "stream"
			case !synced && r.IntN(2) == 0:
				cmd = "backfill"
			}
			start(cmd)
		case k < 5 && len(a) > 0:
			w := a[r.IntN(len(a))]
			steps = append(steps, Step{Act: ActKill, Worker: w, After: dur(r, 0, 3*time.Second)})
			ws[w].alive = false
		case k < 6 && len(a) > 0:
			w := a[r.IntN(len(a))]
			steps = append(steps, Step{Act: ActTerm, Worker: w, After: dur(r, 0, 3*time.Second)})
			ws[w].alive = false
		case k < 8 && len(a) > 0:
			w := a[r.IntN(len(a))]
			steps = append(steps, Step{Act: ActSuspend, Worker: w, After: dur(r, 0, 3*time.Second), D: dur(r, leaseDuration*3/2, leaseDuration*3)})
		case k < 9 && !streamOK:
			if !syncAlive() {
				start("sync")
			}
			steps = append(steps, Step{Act: ActAwaitStream})
			streamOK = true
		default:
			steps = append(steps, Step{Act: ActWait, D: dur(r, 500*time.Millisecond, 4*time.Second)})
		}
	}
	return steps
}
