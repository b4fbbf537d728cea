package cmdutil

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ddbsync/ddbsync/pkg/plan"
)

// Estimate is what a dry run expects one entry's run to do. Item counts
// and sizes are DescribeTable's, which AWS updates about every six hours
// (DynamoDB Local at once): every figure derived from them is approximate.
type Estimate struct {
	// Approximate is always true: a reminder for scripts.
	Approximate  bool    `json:"approximate"`
	Items        int64   `json:"items"`
	Bytes        int64   `json:"bytes"`
	AvgItemBytes float64 `json:"avg_item_bytes"`
	// OutputExists is false when the output table is missing; then
	// CreateOutputTable says a run would create it with OutputKeySchema.
	OutputExists      bool   `json:"output_exists"`
	CreateOutputTable bool   `json:"create_output_table,omitempty"`
	OutputKeySchema   string `json:"output_key_schema,omitempty"`

	// Filter is the entry's filter expression and Transform its steps,
	// both compiled and type-checked like a run's. With a filter,
	// UpperBound says the copy's item count and write units count the
	// whole table: the filter is applied in the client, after the scan
	// read (and was billed for) every item.
	Filter     string             `json:"filter,omitempty"`
	Transform  *TransformEstimate `json:"transform,omitempty"`
	UpperBound bool               `json:"upper_bound,omitempty"`

	Backfill *BackfillEstimate `json:"backfill,omitempty"`
	Stream   *StreamEstimate   `json:"stream,omitempty"`
}

// TransformEstimate is the transform of an entry as a dry run shows it:
// set (attribute → CEL expression), drop (name patterns) and rename (old
// → new), applied in the order drop, rename, set.
type TransformEstimate struct {
	Set    map[string]string `json:"set,omitempty"`
	Drop   []string          `json:"drop,omitempty"`
	Rename map[string]string `json:"rename,omitempty"`
}

// addProgram records the entry's filter and transform in est.
func (est *Estimate) addProgram(e plan.Entry) {
	est.Filter = strings.TrimSpace(e.Filter)
	est.UpperBound = est.Filter != "" && est.Backfill != nil
	if t := e.Transform; t != nil {
		est.Transform = &TransformEstimate{Set: t.Set, Drop: t.Drop, Rename: t.Rename}
	}
}

// BackfillEstimate is the copy part of an Estimate.
type BackfillEstimate struct {
	// AlreadyComplete: the checkpoints say the copy is done; a run would
	// read and write nothing.
	AlreadyComplete bool `json:"already_complete"`
	TotalSegments   int  `json:"total_segments"`
	// Segments this worker would copy, SegmentsDone of them already
	// copied by an earlier run; Leased: shared with other workers.
	Segments     int  `json:"segments"`
	SegmentsDone int  `json:"segments_done"`
	Leased       bool `json:"leased,omitempty"`
	// Parallel segments scanned at once, Writers BatchWriteItem requests
	// in flight.
	Parallel int `json:"parallel"`
	Writers  int `json:"writers"`
	// ItemsToCopy is Items scaled to the segments left to copy.
	ItemsToCopy int64 `json:"items_to_copy"`
	// ReadUnits the scan consumes (eventually consistent: half a unit
	// per started 4 KB), WriteUnits the copy (one per started KB of each
	// item).
	ReadUnits  float64 `json:"read_units"`
	WriteUnits float64 `json:"write_units"`
	MaxRCU     float64 `json:"max_rcu"`
	MaxWCU     float64 `json:"max_wcu"`
	// DurationSeconds at --max-wcu/--max-rcu; null (unbounded) without
	// either.
	DurationSeconds *float64 `json:"duration_seconds"`
}

// StreamEstimate is the stream part of an Estimate: what would be read.
type StreamEstimate struct {
	StreamARN  string `json:"stream_arn"`
	ViewType   string `json:"view_type"`
	Shards     int    `json:"shards"`
	OpenShards int    `json:"open_shards"`
	// Checkpoints is how many shards have a checkpoint (or lease) of
	// this entry.
	Checkpoints int `json:"checkpoints"`
	// StartPosition says where reading would begin.
	StartPosition string `json:"start_position"`
}

// CopyUnits estimates the capacity a copy of items items and bytes bytes
// consumes, scaled by fraction (the part of the table left to copy): a
// scan reads eventually consistent pages, half a read unit per started
// 4 KB of data; every item written costs one write unit per started KB of
// the average item size. duration is the time at maxRCU/maxWCU units per
// second (the slower of the two), or nil when neither bounds it.
func CopyUnits(items, bytes int64, fraction, maxRCU, maxWCU float64) (toCopy int64, rcu, wcu float64, duration *float64) {
	toCopy = int64(math.Round(float64(items) * fraction))
	scanned := float64(bytes) * fraction
	rcu = math.Ceil(scanned/4096) / 2
	avg := 0.0
	if items > 0 {
		avg = float64(bytes) / float64(items)
	}
	perItem := math.Max(1, math.Ceil(avg/1024))
	wcu = float64(toCopy) * perItem
	var secs float64
	bounded := false
	if maxWCU > 0 {
		secs, bounded = wcu/maxWCU, true
	}
	if maxRCU > 0 {
		secs, bounded = math.Max(secs, rcu/maxRCU), true
	}
	if bounded {
		duration = &secs
	}
	return toCopy, rcu, wcu, duration
}

// DryRun checks every entry with check — the very checks the real run
// calls before it writes — and, for those that pass, asks estimate what
// the run would do. It writes the report on standard output (text, or the
// Result object with --output json) and returns what the run would have
// returned from its checks: nil when it would start (exit 0), the checks'
// errors otherwise (a refusal is exit 2). Nothing is written: the
// factory is read-only (OutputFlags.Begin).
func (r *EntriesRun) DryRun(o *OutputFlags, command string, check func(i int) error, estimate func(i int) (*Estimate, error)) error {
	res := Result{Command: command, DryRun: true, Entries: []EntryResult{}, Notes: r.Notes}
	start := time.Now()
	for i, e := range r.Entries {
		began := time.Now()
		err := check(i)
		var est *Estimate
		if err == nil {
			est, err = estimate(i)
		}
		if est != nil {
			est.addProgram(e.Entry)
		}
		if r.Interrupted() {
			return &ExitError{Code: ExitInterrupted, Err: r.Ctx.Err()}
		}
		e.Err = err
		phase := PhaseWouldStart
		if err != nil {
			phase = PhaseRefused
		}
		er := e.result(phase, err, time.Since(began))
		er.Estimate = est
		res.Entries = append(res.Entries, er)
	}
	res.DurationSeconds = time.Since(start).Seconds()
	var werr error
	if o.JSON() {
		werr = WriteResult(r.f.IOStreams.Out, res)
	} else {
		werr = writeDryRunText(r.f.IOStreams.Out, res)
	}
	if err := r.Err(false); err != nil {
		return err
	}
	return werr
}

func writeDryRunText(w io.Writer, res Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Dry run of %s: nothing was created or written. Item counts and sizes are approximate (DescribeTable's, updated by AWS about every 6 hours).\n", res.Command)
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	for _, e := range res.Entries {
		fmt.Fprintf(&b, "[%s] ⇨ [%s]: ", e.Input, e.Output)
		if e.Phase == PhaseRefused {
			fmt.Fprintf(&b, "a run would be refused: %s\n", e.Error)
			continue
		}
		b.WriteString("a run would start\n")
		est := e.Estimate
		if est == nil {
			continue
		}
		avg := ""
		if est.Items > 0 {
			avg = fmt.Sprintf(", about %s per item", sizeText(int64(est.AvgItemBytes)))
		}
		fmt.Fprintf(&b, "  input:    ~%s items, ~%s%s\n", thousands(est.Items), sizeText(est.Bytes), avg)
		switch {
		case est.OutputExists:
			b.WriteString("  output:   exists, same key schema\n")
		case est.CreateOutputTable:
			fmt.Fprintf(&b, "  output:   does not exist; --create-output-table would create it with the key %s\n", est.OutputKeySchema)
		}
		writeProgram(&b, est)
		if bf := est.Backfill; bf != nil {
			writeBackfillEstimate(&b, bf, est.UpperBound)
		}
		if st := est.Stream; st != nil {
			fmt.Fprintf(&b, "  stream:   %s (%s), %d shard(s), %d open; %s\n", st.StreamARN, st.ViewType, st.Shards, st.OpenShards, st.StartPosition)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeProgram writes the entry's filter and transform steps, in the
// order the steps run.
func writeProgram(b *strings.Builder, est *Estimate) {
	if est.Filter != "" {
		fmt.Fprintf(b, "  filter:   %s (applied in the client: the scan reads the whole table)\n", est.Filter)
	}
	t := est.Transform
	if t == nil {
		return
	}
	var steps []string
	if len(t.Drop) > 0 {
		steps = append(steps, "drop "+strings.Join(t.Drop, ", "))
	}
	if len(t.Rename) > 0 {
		var r []string
		for _, old := range sortedKeys(t.Rename) {
			r = append(r, old+" → "+t.Rename[old])
		}
		steps = append(steps, "rename "+strings.Join(r, ", "))
	}
	if len(t.Set) > 0 {
		var s []string
		for _, name := range sortedKeys(t.Set) {
			s = append(s, name+" = "+t.Set[name])
		}
		steps = append(steps, "set "+strings.Join(s, ", "))
	}
	if len(steps) == 0 {
		steps = []string{"no steps (items are written as read)"}
	}
	fmt.Fprintf(b, "  transform: %s\n", strings.Join(steps, "; "))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func writeBackfillEstimate(b *strings.Builder, bf *BackfillEstimate, upperBound bool) {
	if bf.AlreadyComplete {
		fmt.Fprintf(b, "  copy:     already complete (checkpoints: %d of %d segments copied); nothing would be read or written\n", bf.SegmentsDone, bf.Segments)
		return
	}
	switch {
	case bf.Leased:
		fmt.Fprintf(b, "  scan:     %d segments shared with the other workers through leases, up to %d at a time, %d writers\n", bf.TotalSegments, bf.Parallel, bf.Writers)
	case bf.SegmentsDone > 0:
		fmt.Fprintf(b, "  scan:     %d of %d segments, %d of them already copied (resuming), %d at a time, %d writers\n", bf.Segments, bf.TotalSegments, bf.SegmentsDone, bf.Parallel, bf.Writers)
	default:
		fmt.Fprintf(b, "  scan:     %d of %d segments, %d at a time, %d writers\n", bf.Segments, bf.TotalSegments, bf.Parallel, bf.Writers)
	}
	if upperBound {
		fmt.Fprintf(b, "  capacity: at most ~%s items to copy: ~%s read units (scan, eventually consistent), at most ~%s write units (copy)\n",
			thousands(bf.ItemsToCopy), unitsText(bf.ReadUnits), unitsText(bf.WriteUnits))
		b.WriteString("            upper bounds: the whole table is counted; the filter is applied in the client, so only the items it keeps are written\n")
	} else {
		fmt.Fprintf(b, "  capacity: ~%s items to copy: ~%s read units (scan, eventually consistent), ~%s write units (copy)\n",
			thousands(bf.ItemsToCopy), unitsText(bf.ReadUnits), unitsText(bf.WriteUnits))
	}
	if bf.DurationSeconds == nil {
		b.WriteString("  duration: unbounded by a budget (no --max-wcu or --max-rcu): as fast as the tables allow\n")
		return
	}
	var at []string
	if bf.MaxWCU > 0 {
		at = append(at, fmt.Sprintf("--max-wcu %s", unitsText(bf.MaxWCU)))
	}
	if bf.MaxRCU > 0 {
		at = append(at, fmt.Sprintf("--max-rcu %s", unitsText(bf.MaxRCU)))
	}
	fmt.Fprintf(b, "  duration: ~%s at %s\n", (time.Duration(*bf.DurationSeconds * float64(time.Second))).Round(time.Second), strings.Join(at, " and "))
}

// thousands formats n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unitsText(v float64) string {
	if v == math.Trunc(v) {
		return thousands(int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

// sizeText formats bytes: 512 B, 1.2 kB, 340 MB.
func sizeText(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
