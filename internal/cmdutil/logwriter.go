package cmdutil

import (
	"io"
	"sync"
)

// LogWriter is the writer the run's logger writes to. By default every
// write goes straight to its output (IOStreams.Out). The live status
// display installs a hook while it redraws a block on the same terminal,
// so that log lines are printed above the block instead of tearing it
// (as rclone does).
type LogWriter struct {
	mu   sync.Mutex
	out  io.Writer
	hook func(out io.Writer, p []byte) (int, error)
	// file: the logs go to --log-file, which neither the status display
	// nor a command moving its logs off standard output can change.
	file bool
}

// NewLogWriter returns a LogWriter writing to out.
func NewLogWriter(out io.Writer) *LogWriter { return &LogWriter{out: out} }

// NewFileLogWriter returns a LogWriter writing to a log file: SetHook and
// SetOutput leave it alone, since its lines never reach the terminal.
func NewFileLogWriter(out io.Writer) *LogWriter { return &LogWriter{out: out, file: true} }

// Write writes one log entry (zap writes each entry with one call).
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hook != nil {
		return w.hook(w.out, p)
	}
	return w.out.Write(p)
}

// Sync flushes the output when it can be flushed (an *os.File).
func (w *LogWriter) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.out.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}

// SetHook routes every write through h until restore is called. h is
// called with the writer's lock held, so writes never interleave.
func (w *LogWriter) SetHook(h func(out io.Writer, p []byte) (int, error)) (restore func()) {
	if w.file {
		return func() {}
	}
	w.mu.Lock()
	prev := w.hook
	w.hook = h
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		w.hook = prev
		w.mu.Unlock()
	}
}
