package status

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/ddbsync/ddbsync/pkg/stats"
)

// snap is a consistent-enough copy of one entry's counters, taken once per
// frame so every column of a row reads the same values.
type snap struct {
	Input, Output            string
	ApproxItems, ApproxBytes int64
	Backfill, Stream, Diff   stats.Phase

	ItemsWritten, ItemsFailed, ItemsSkipped int64
	// ItemsFiltered are the skipped items the filter left out.
	ItemsFiltered                                 int64
	RecordsApplied, RecordsSkipped, RecordsFailed int64
	LatencyMillis                                 int64

	Scanned, Missing, Differing, Extra, Repaired, Deleted, Conflicts, Errors int64

	ConsumedRCU, ConsumedWCU float64
	BufferLen, BufferCap     int64

	// Rates per second over the last interval (or the whole run for the
	// final state).
	ItemsRate, RCURate, WCURate float64
	// CopyRate is the backfill's items per second over the moving window
	// of the time left (0: no rate yet, or the final state).
	CopyRate float64
}

func takeSnap(e *stats.Entry) snap {
	return snap{
		Input:          e.Input,
		Output:         e.Output,
		ApproxItems:    e.ApproxItems.Load(),
		ApproxBytes:    e.ApproxBytes.Load(),
		Backfill:       stats.GetPhase(&e.BackfillPhase),
		Stream:         stats.GetPhase(&e.StreamPhase),
		Diff:           stats.GetPhase(&e.DiffPhase),
		ItemsWritten:   e.ItemsWritten.Load(),
		ItemsFailed:    e.ItemsFailed.Load(),
		ItemsSkipped:   e.ItemsSkipped.Load(),
		ItemsFiltered:  e.ItemsFiltered.Load(),
		RecordsFailed:  e.RecordsFailed.Load(),
		RecordsApplied: e.RecordsApplied.Load(),
		RecordsSkipped: e.RecordsSkipped.Load(),
		LatencyMillis:  e.LatencyMillis.Load(),
		Scanned:        e.Scanned.Load(),
		Missing:        e.Missing.Load(),
		Differing:      e.Differing.Load(),
		Extra:          e.Extra.Load(),
		Repaired:       e.Repaired.Load(),
		Deleted:        e.Deleted.Load(),
		Conflicts:      e.Conflicts.Load(),
		Errors:         e.Errors.Load(),
		ConsumedRCU:    e.ConsumedRCU.Load(),
		ConsumedWCU:    e.ConsumedWCU.Load(),
		BufferLen:      e.BufferLen.Load(),
		BufferCap:      e.BufferCap.Load(),
	}
}

// copied is how many of the input's items the backfill has dealt with:
// written, skipped or failed.
func (s snap) copied() int64 { return s.ItemsWritten + s.ItemsSkipped + s.ItemsFailed }

// maxLeft bounds the time left shown: beyond it the estimate means
// nothing (a stalled copy, a table far larger than its count).
const maxLeft = 100 * time.Hour

// left is the estimated time left of a running backfill, and whether
// there is one: the items of the approximate count not yet copied at the
// recent rate. There is none before a rate is known, and none once the
// copy went past the approximate count (it is hours old on AWS).
func (s snap) left() (time.Duration, bool) {
	remaining := s.ApproxItems - s.copied()
	if s.Backfill != stats.Running || s.ApproxItems <= 0 || remaining <= 0 || s.CopyRate <= 0 {
		return 0, false
	}
	secs := float64(remaining) / s.CopyRate
	if secs >= maxLeft.Seconds() {
		return maxLeft, true
	}
	return time.Duration(secs * float64(time.Second)), true
}

// leftText formats the time left: "~2m30s", "~1h5m", ">100h", or "—"
// when there is no estimate.
func (s snap) leftText() string {
	d, ok := s.left()
	switch {
	case !ok:
		return "—"
	case d >= maxLeft:
		return ">" + strings.TrimSuffix(maxLeft.String(), "0m0s")
	case d < time.Second:
		return "<1s"
	case d < time.Hour:
		return "~" + d.Round(time.Second).String()
	default:
		return "~" + strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
}

// percent is how much of the approximate item count the backfill has
// copied, at most 100 (the count is approximate).
func (s snap) percent() int64 {
	if s.ApproxItems <= 0 {
		return 0
	}
	return min(100, s.copied()*100/s.ApproxItems)
}

// progressCount is the counter the items/s rate is computed from.
func (s snap) progressCount(kind string) int64 {
	if kind == "diff" {
		return s.Scanned
	}
	return s.ItemsWritten + s.RecordsApplied
}

// cell is the text of one table cell and how to colour it.
type cell struct {
	text  string
	class int
}

const (
	plain = iota
	good
	bad
	dim
)

type column struct {
	title string
	cell  func(s snap, full bool) cell
}

func columnsFor(kind string) []column {
	table := column{"TABLE", func(s snap, _ bool) cell { return cell{text: s.Output} }}
	details := column{"DETAILS", detailsCell}
	switch kind {
	case "diff":
		return []column{table, details,
			{"SCANNED", func(s snap, full bool) cell { return countCell(s.Diff, s.Scanned, s.ApproxItems, 0, full) }},
			{"MISSING", func(s snap, full bool) cell { return numCell(s.Missing, full) }},
			{"DIFFERING", func(s snap, full bool) cell { return numCell(s.Differing, full) }},
			{"EXTRA", func(s snap, full bool) cell { return numCell(s.Extra, full) }},
			{"REPAIRED", func(s snap, full bool) cell { return repairedCell(s, full) }},
			{"RATE", func(s snap, full bool) cell {
				return cell{text: rate(s.ItemsRate, full) + "/s ⇨ " + rate(s.RCURate, full) + " RCU/s"}
			}},
		}
	}
	cols := []column{table, details}
	if kind != "stream" {
		cols = append(cols, column{"BACKFILL", backfillCell})
	}
	if kind != "backfill" {
		cols = append(cols, column{"STREAM", streamCell})
	}
	cols = append(cols, column{"RATES & BUFFER", func(s snap, full bool) cell {
		return cell{text: rate(s.ItemsRate, full) + "/s ⇨ " + glyph(s.BufferLen, s.BufferCap) + " ⇨ " + rate(s.WCURate, full) + " WCU/s"}
	}})
	return cols
}

func detailsCell(s snap, full bool) cell {
	if s.ApproxItems == 0 && s.ApproxBytes == 0 {
		return cell{text: "-", class: dim}
	}
	if full {
		return cell{text: "~" + short(float64(s.ApproxItems)) + " items, " + bytesSI(s.ApproxBytes)}
	}
	return cell{text: "~" + short(float64(s.ApproxItems)) + ", " + strings.ReplaceAll(bytesSI(s.ApproxBytes), " ", "")}
}

func num(n int64, full bool) string {
	if full {
		return exact(n)
	}
	return short(float64(n))
}

func numCell(n int64, full bool) cell {
	c := cell{text: num(n, full)}
	if n > 0 {
		c.class = bad
	}
	return c
}

func repairedCell(s snap, full bool) cell {
	t := num(s.Repaired, full)
	if s.Deleted > 0 {
		t += " +" + num(s.Deleted, full) + " del"
	}
	return cell{text: t}
}

// backfillCell is the BACKFILL cell: countCell, while running the
// percent of the approximate item count copied and the time left, and
// the items the filter left out when there are any.
func backfillCell(s snap, full bool) cell {
	c := countCell(s.Backfill, s.ItemsWritten, 0, s.ItemsFailed, full)
	if s.Backfill == stats.Running && s.ApproxItems > 0 {
		left := s.leftText()
		if full {
			left += " left"
		}
		n := num(s.ItemsWritten, full)
		c.text = fmt.Sprintf("%s (%d%%, %s)", n, s.percent(), left) + strings.TrimPrefix(c.text, n)
	}
	if s.ItemsFiltered > 0 && s.Backfill != stats.Pending && s.Backfill != stats.Skipped {
		c.text += " " + num(s.ItemsFiltered, full) + " filtered"
	}
	return c
}

// countCell is a BACKFILL or SCANNED cell: the phase marker, or the count
// with the percent of the table's approximate item count.
func countCell(p stats.Phase, n, approx, failed int64, full bool) cell {
	var c cell
	switch p {
	case stats.Pending:
		return cell{text: "-PENDING-", class: dim}
	case stats.Skipped:
		return cell{text: "-SKIPPED-", class: dim}
	case stats.Complete:
		c = cell{text: "-COMPLETE-", class: good}
		if full {
			c.text += " (" + exact(n) + ")"
		}
	case stats.Failed:
		c = cell{text: "-FAILED- (" + num(n, full) + ")", class: bad}
	case stats.Stopped:
		c = cell{text: "-STOPPED- (" + num(n, full) + ")", class: dim}
	default:
		c = cell{text: num(n, full)}
		if approx > 0 {
			pct := n * 100 / approx
			if pct > 99 {
				pct = 99 // the estimate is hours old; done is -COMPLETE-
			}
			c.text += fmt.Sprintf(" (%d%%)", pct)
		}
	}
	if failed > 0 {
		c.text += " " + num(failed, full) + " failed"
		c.class = bad
	}
	return c
}

// streamCell is the STREAM cell: the phase marker or the records applied
// and how far behind, then the changes the filter or transform failed on
// when there are any.
func streamCell(s snap, full bool) cell {
	var c cell
	switch s.Stream {
	case stats.Pending:
		return cell{text: "-PENDING-", class: dim}
	case stats.Skipped:
		return cell{text: "-SKIPPED-", class: dim}
	case stats.Failed:
		c = cell{text: "-FAILED- (" + num(s.RecordsApplied, full) + ")", class: bad}
	case stats.Complete:
		c = cell{text: "-COMPLETE- (" + num(s.RecordsApplied, full) + ")", class: good}
	default:
		c = cell{text: num(s.RecordsApplied, full) + " (" + latency(s.LatencyMillis) + " behind)"}
	}
	if s.RecordsFailed > 0 {
		c.text += " " + num(s.RecordsFailed, full) + " failed"
		c.class = bad
	}
	return c
}

// styles colour the block; with a renderer whose output is no terminal
// they render plain text.
type styles struct {
	title, header, good, bad, dim lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	return styles{
		title:  r.NewStyle().Bold(true),
		header: r.NewStyle().Bold(true), // no underline: lipgloss underlines rune by rune
		good:   r.NewStyle().Foreground(lipgloss.Color("2")),
		bad:    r.NewStyle().Foreground(lipgloss.Color("1")),
		dim:    r.NewStyle().Faint(true),
	}
}

func (st styles) of(class int) lipgloss.Style {
	switch class {
	case good:
		return st.good
	case bad:
		return st.bad
	case dim:
		return st.dim
	}
	return lipgloss.Style{}
}

const gap = 2

// renderBlock lays out the status table in at most w cells per line. It
// tries exact numbers first (unless compact), then abbreviated ones, then
// drops DETAILS and shortens table names, so nothing wraps.
func renderBlock(st styles, title, kind string, rows []snap, w int, compact bool) (block string, usedCompact bool) {
	cols := columnsFor(kind)
	var lines []string
	for _, full := range []bool{true, false} {
		if full && compact {
			continue
		}
		cells, widths := layout(cols, rows, full)
		if full {
			// Exact numbers, if shortening long table names is enough.
			if over := total(widths) - w; over > 0 && widths[0] > 12 {
				widths[0] = max(12, widths[0]-over)
			}
			if total(widths) > w {
				continue
			}
		}
		lines = fit(st, cols, cells, widths, w)
		usedCompact = !full
		break
	}
	return st.title.Render(truncate(title, w)) + "\n" + strings.Join(lines, "\n") + "\n", usedCompact
}

func layout(cols []column, rows []snap, full bool) ([][]cell, []int) {
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = width(c.title)
	}
	cells := make([][]cell, len(rows))
	for r, s := range rows {
		cells[r] = make([]cell, len(cols))
		for i, c := range cols {
			cells[r][i] = c.cell(s, full)
			widths[i] = max(widths[i], width(cells[r][i].text))
		}
	}
	return cells, widths
}

func total(widths []int) int {
	n := 0
	for i, w := range widths {
		if w < 0 {
			continue
		}
		if i > 0 {
			n += gap
		}
		n += w
	}
	return n
}

// fit shrinks the table to w cells: TABLE down to 12 cells, then DETAILS
// is dropped, then TABLE down to 5 cells, then every line is cut.
func fit(st styles, cols []column, cells [][]cell, widths []int, w int) []string {
	shrink := func(i, min int) {
		if over := total(widths) - w; over > 0 && widths[i] > min {
			widths[i] = max(min, widths[i]-over)
		}
	}
	shrink(0, 12)
	if total(widths) > w && len(widths) > 1 {
		widths[1] = -1 // dropped
	}
	shrink(0, 5)

	line := func(texts []cell, header bool) string {
		var b strings.Builder
		first := true
		for i, c := range texts {
			if widths[i] < 0 {
				continue
			}
			if !first {
				b.WriteString(strings.Repeat(" ", gap))
			}
			first = false
			t := truncate(c.text, widths[i])
			padding := strings.Repeat(" ", widths[i]-width(t))
			if i == len(texts)-1 {
				padding = "" // no trailing blanks
			}
			s := st.of(c.class)
			if header {
				s = st.header
			}
			b.WriteString(s.Render(t) + padding)
		}
		return b.String()
	}
	out := make([]string, 0, len(cells)+1)
	hdr := make([]cell, len(cols))
	for i, c := range cols {
		hdr[i] = cell{text: c.title}
	}
	out = append(out, line(hdr, true))
	for _, r := range cells {
		out = append(out, line(r, false))
	}
	if total(widths) > w {
		// Still too wide (a very narrow terminal): cut the plain lines.
		for i := range out {
			out[i] = truncate(stripped(out[i]), w)
		}
	}
	return out
}

// stripped removes styling (only used for terminals too narrow for any
// layout, where colour is the least concern).
func stripped(s string) string {
	var b strings.Builder
	inEsc := false
	for _, r := range s {
		switch {
		case r == '\x1b':
			inEsc = true
		case inEsc:
			if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
				inEsc = false
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// plainLine is one entry's status as a sentence, for logs and for
// standard error when it is not a terminal. Numbers are exact.
func plainLine(kind string, s snap) string {
	return fmt.Sprintf("[%s] ⇨ [%s]: %s", s.Input, s.Output, plainBody(kind, s))
}

// plainBody is plainLine without the entry prefix.
func plainBody(kind string, s snap) string {
	var parts []string
	if kind == "diff" {
		parts = append(parts, "diff "+phaseText(s.Diff, s.Scanned, s.ApproxItems, "scanned"))
		parts = append(parts, fmt.Sprintf("%s missing, %s differing, %s extra, %s repaired, %s deleted",
			exact(s.Missing), exact(s.Differing), exact(s.Extra), exact(s.Repaired), exact(s.Deleted)))
		if s.Conflicts > 0 || s.Errors > 0 {
			parts = append(parts, fmt.Sprintf("%s conflicts, %s errors", exact(s.Conflicts), exact(s.Errors)))
		}
		parts = append(parts, fmt.Sprintf("%s items/s, %s RCU/s", exact(int64(s.ItemsRate+0.5)), exact(int64(s.RCURate+0.5))))
	} else {
		if kind != "stream" {
			b := "backfill " + phaseText(s.Backfill, s.ItemsWritten, 0, "items written")
			running := s.Backfill == stats.Running && s.ApproxItems > 0
			if running {
				b += fmt.Sprintf(" of ~%s (%d%%)", exact(s.ApproxItems), s.percent())
			}
			if s.ItemsFailed > 0 {
				b += ", " + exact(s.ItemsFailed) + " failed"
			}
			if s.ItemsSkipped > 0 {
				b += ", " + exact(s.ItemsSkipped) + " skipped"
				if s.ItemsFiltered > 0 {
					b += " (" + exact(s.ItemsFiltered) + " by the filter)"
				}
			}
			if running {
				b += ", " + s.leftText() + " left"
			}
			parts = append(parts, b)
		}
		if kind != "backfill" {
			t := "stream " + s.Stream.String()
			if s.Stream != stats.Pending && s.Stream != stats.Skipped {
				t += ", " + exact(s.RecordsApplied) + " records applied"
				if s.Stream == stats.Running {
					t += " (" + latency(s.LatencyMillis) + " behind)"
				}
				if s.RecordsFailed > 0 {
					t += ", " + exact(s.RecordsFailed) + " failed"
				}
			}
			parts = append(parts, t)
		}
		parts = append(parts, fmt.Sprintf("%s items/s, buffer %d/%d, %s WCU/s",
			exact(int64(s.ItemsRate+0.5)), s.BufferLen, s.BufferCap, exact(int64(s.WCURate+0.5))))
	}
	return strings.Join(parts, "; ")
}

func phaseText(p stats.Phase, n, approx int64, what string) string {
	switch p {
	case stats.Pending, stats.Skipped:
		return p.String()
	}
	t := p.String() + ", " + exact(n) + " " + what
	if p == stats.Running && approx > 0 {
		t += fmt.Sprintf(" of ~%s (%d%%)", exact(approx), min(99, n*100/approx))
	}
	return t
}

func headerTitle(final bool, kind string, d time.Duration) string {
	name := "Current Status"
	if final {
		name = "Final Status"
	}
	return fmt.Sprintf("%s · %s · %s elapsed", name, kind, elapsed(d))
}
