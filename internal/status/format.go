package status

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
)

// exact formats n with thousands separators: 1,234,567.
func exact(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// short abbreviates n: 999, 1.2k, 812.3k, 1.2M, 3.4G.
func short(n float64) string {
	a := n
	if a < 0 {
		a = -a
	}
	switch {
	case a < 999.5:
		return strconv.FormatFloat(math.Round(n), 'f', 0, 64)
	case a < 1e6:
		return trimZero(strconv.FormatFloat(n/1e3, 'f', 1, 64)) + "k"
	case a < 1e9:
		return trimZero(strconv.FormatFloat(n/1e6, 'f', 1, 64)) + "M"
	default:
		return trimZero(strconv.FormatFloat(n/1e9, 'f', 1, 64)) + "G"
	}
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// bytesSI formats a size: 0 B, 512 B, 1.2 kB, 340 MB, 1.5 GB.
func bytesSI(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if v >= 100 {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	return trimZero(s) + " " + string("kMGTPE"[exp]) + "B"
}

// rate formats a per-second rate: exact below 1000 in full form.
func rate(v float64, full bool) string {
	if full && v < 1e6 {
		return exact(int64(v + 0.5))
	}
	return short(v)
}

// latency formats the stream latency: <1s, ~5s, ~2m30s, ~1h4m.
func latency(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return "<1s"
	case d < time.Hour:
		return "~" + d.Round(time.Second).String()
	default:
		return "~" + strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
}

// elapsed formats an elapsed time for headers and the log: 5m9s, 2h3m4s.
func elapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}

// glyph is the fill level of the reader → writer queue.
func glyph(n, capacity int64) string {
	if capacity <= 0 || n <= 0 {
		return "○"
	}
	f := float64(n) / float64(capacity)
	switch {
	case f <= 0.25:
		return "◔"
	case f <= 0.5:
		return "◑"
	case f <= 0.75:
		return "◕"
	default:
		return "●"
	}
}

// width is the number of terminal cells s takes.
func width(s string) int { return lipgloss.Width(s) }

// truncate shortens s to at most w cells, ending with "…" when cut.
func truncate(s string, w int) string {
	if width(s) <= w {
		return s
	}
	if w <= 0 {
		return ""
	}
	var b strings.Builder
	used := 0
	for _, r := range s {
		rw := width(string(r))
		if used+rw > w-1 {
			break
		}
		b.WriteRune(r)
		used += rw
	}
	return b.String() + "…"
}
