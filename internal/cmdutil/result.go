package cmdutil

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddbsync/ddbsync/pkg/stats"
)

// Output formats of --output.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// OutputFlags are --output and --dry-run of backfill, stream and sync.
type OutputFlags struct {
	// Output is --output: "text", or "json" for one result object on
	// standard output, the logs going to standard error.
	Output string
	// DryRun is --dry-run: run every check a real run makes, write
	// nothing, and report what the run would do.
	DryRun bool
}

// AddOutputFlags registers --output and --dry-run on cmd.
func AddOutputFlags(cmd *cobra.Command, o *OutputFlags) {
	StringEnumFlag(cmd, cmd.Flags(), &o.Output, "output", OutputText, []string{OutputText, OutputJSON},
		"result format; json prints one object on standard output at the end (also when interrupted or failed) and sends the logs to standard error (docs/usage.md)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false,
		"check everything a run checks before writing, write nothing, and print what it would do: approximate items and bytes, segments, capacity units and duration (exit 0: it would start, 2: refused)")
}

// JSON reports whether the result goes to standard output as JSON.
func (o *OutputFlags) JSON() bool { return o.Output == OutputJSON }

// Begin prepares the run's output: with --output json, standard output
// carries only the result object, so the logs (and the progress log) move
// to standard error; a --log-file keeps them. With --dry-run the factory
// becomes read-only (see Factory.ReadOnly). restore undoes it.
func (o *OutputFlags) Begin(f *Factory) (restore func()) {
	if o.DryRun {
		f.ReadOnly = true
	}
	if !o.JSON() {
		return func() {}
	}
	return f.LogWriter().SetOutput(f.IOStreams.ErrOut)
}

// Result is the --output json object of backfill, stream and sync. Fields
// may be added, never renamed.
type Result struct {
	Command         string        `json:"command"`
	DryRun          bool          `json:"dry_run,omitempty"`
	Entries         []EntryResult `json:"entries"`
	Notes           []string      `json:"notes,omitempty"`
	DurationSeconds float64       `json:"duration_seconds"`
}

// EntryResult is one plan entry of a Result. Counters come from the
// entry's stats.Entry: record fields are 0 for a backfill, item fields 0
// for a stream.
type EntryResult struct {
	Input  string `json:"input"`  // REGION:TABLE
	Output string `json:"output"` // REGION:TABLE
	// Phase is complete, stopped (interrupted; progress is checkpointed)
	// or failed; a dry run says would-start or refused.
	Phase        string `json:"phase"`
	ItemsRead    int64  `json:"items_read"`
	ItemsWritten int64  `json:"items_written"`
	ItemsSkipped int64  `json:"items_skipped"`
	ItemsFailed  int64  `json:"items_failed"`
	// ItemsFiltered are the skipped items the filter left out.
	ItemsFiltered  int64 `json:"items_filtered"`
	RecordsRead    int64 `json:"records_read"`
	RecordsApplied int64 `json:"records_applied"`
	// RecordsFailed are the records whose item the filter or transform
	// failed on: left out with --skip-failed-items; without it the first
	// one (counted too) stops the stream.
	RecordsFailed   int64   `json:"records_failed"`
	ConsumedRCU     float64 `json:"consumed_rcu"`
	ConsumedWCU     float64 `json:"consumed_wcu"`
	Retries         int64   `json:"retries"`
	Throttles       int64   `json:"throttles"`
	Error           string  `json:"error"`
	DurationSeconds float64 `json:"duration_seconds"`
	// Estimate is what a dry run expects the run to do.
	Estimate *Estimate `json:"estimate,omitempty"`
}

// Phases of an EntryResult.
const (
	PhaseComplete   = "complete"
	PhaseStopped    = "stopped"
	PhaseFailed     = "failed"
	PhaseWouldStart = "would-start"
	PhaseRefused    = "refused"
)

// entryResult fills the counters of an EntryResult from st.
func entryResult(st *stats.Entry, phase string, err error, d time.Duration) EntryResult {
	r := EntryResult{
		Input:           st.Input,
		Output:          st.Output,
		Phase:           phase,
		ItemsRead:       st.ItemsRead.Load(),
		ItemsWritten:    st.ItemsWritten.Load(),
		ItemsSkipped:    st.ItemsSkipped.Load(),
		ItemsFailed:     st.ItemsFailed.Load(),
		ItemsFiltered:   st.ItemsFiltered.Load(),
		RecordsRead:     st.RecordsRead.Load(),
		RecordsApplied:  st.RecordsApplied.Load(),
		RecordsFailed:   st.RecordsFailed.Load(),
		ConsumedRCU:     st.ConsumedRCU.Load(),
		ConsumedWCU:     st.ConsumedWCU.Load(),
		Retries:         st.Retries.Load(),
		Throttles:       st.Throttles.Load(),
		DurationSeconds: d.Seconds(),
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// Result is the run's result object, once Run returned (or, when the run
// was interrupted before it started, with every entry stopped): an entry
// is failed when it returned an error other than the interruption,
// stopped when it was interrupted, complete otherwise.
func (r *EntriesRun) Result(command string) Result {
	res := Result{Command: command, Entries: []EntryResult{}}
	if !r.Start.IsZero() {
		res.DurationSeconds = time.Since(r.Start).Seconds()
	}
	for _, e := range r.Entries {
		phase := PhaseComplete
		switch {
		case e.Err != nil && !errors.Is(e.Err, context.Canceled):
			phase = PhaseFailed
		case e.Err != nil || e.Stopped || r.Interrupted() || r.Start.IsZero():
			phase = PhaseStopped
		}
		err := e.Err
		if phase != PhaseFailed {
			err = nil
		}
		res.Entries = append(res.Entries, e.result(phase, err, e.Duration))
	}
	return res
}

// result is the entry's EntryResult, its tables named REGION:TABLE with
// the regions its clients use.
func (e *RunEntry) result(phase string, err error, d time.Duration) EntryResult {
	r := entryResult(e.Stats, phase, err, d)
	if e.In != nil && e.In.Region != "" {
		r.Input = e.In.Region + ":" + e.Entry.Input.Table
	}
	if e.Out != nil && e.Out.Region != "" {
		r.Output = e.Out.Region + ":" + e.Entry.Output.Table
	}
	return r
}

// WriteResult writes the result as one JSON object on one line.
func WriteResult(w io.Writer, res Result) error {
	if res.Entries == nil {
		res.Entries = []EntryResult{}
	}
	return json.NewEncoder(w).Encode(res)
}

// Finish ends a run of backfill, stream or sync: with --output json it
// writes the run's result object to standard output, then returns err
// (the run's outcome, which picks the exit code) unchanged, or the write
// error when there was none.
func (o *OutputFlags) Finish(f *Factory, r *EntriesRun, command string, err error) error {
	if !o.JSON() || r == nil {
		return err
	}
	if werr := WriteResult(f.IOStreams.Out, r.Result(command)); werr != nil && err == nil {
		return werr
	}
	return err
}
