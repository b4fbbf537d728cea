package cmdutil

import "io"

// SetOutput sends log entries to out instead of the writer the LogWriter
// was made with, until restore is called. `diff --output json` uses it to
// move the logs (and the progress log) to standard error, so that
// standard output carries only the JSON summary. Logs going to a
// --log-file stay there.
func (w *LogWriter) SetOutput(out io.Writer) (restore func()) {
	if w.file {
		return func() {}
	}
	w.mu.Lock()
	prev := w.out
	w.out = out
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		w.out = prev
		w.mu.Unlock()
	}
}
