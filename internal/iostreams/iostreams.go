// Package iostreams carries the standard streams of a command and what is
// known about them (terminal or not, width), so that commands can be
// tested with buffers in place of the real streams.
package iostreams

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// IOStreams are the standard streams of a command.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer // logs and data
	ErrOut io.Writer // status display and diagnostics

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	width     func() int

	promptMu sync.Mutex
	inReader *bufio.Reader
}

// System returns the process's streams.
func System() *IOStreams {
	return &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		width: func() int {
			w, _, err := term.GetSize(int(os.Stderr.Fd()))
			if err != nil || w <= 0 {
				return 80
			}
			return w
		},
	}
}

// Test returns streams backed by buffers: in, out, errOut.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, width: func() int { return 80 }}, in, out, errOut
}

// SetTTY marks the streams as terminals (tests).
func (s *IOStreams) SetTTY(stdin, stdout, stderr bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = stdin, stdout, stderr
}

// SetWidth fixes the terminal width (tests).
func (s *IOStreams) SetWidth(w int) { s.width = func() int { return w } }

// IsStdoutTTY reports whether standard output is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether standard error is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// CanPrompt reports whether the user can be asked something: standard
// input and standard error are both terminals.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// TerminalWidth is the width of the terminal on standard error (80 when
// unknown).
func (s *IOStreams) TerminalWidth() int {
	if s.width == nil {
		return 80
	}
	return s.width()
}

// Prompt asks a question on ErrOut and reads one line from In. It refuses
// when there is no terminal to ask on.
func (s *IOStreams) Prompt(question string) (string, error) {
	if !s.CanPrompt() {
		return "", fmt.Errorf("cannot ask %q: not running in a terminal", strings.TrimSpace(question))
	}
	s.promptMu.Lock()
	defer s.promptMu.Unlock()
	fmt.Fprint(s.ErrOut, question)
	if f, ok := s.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(s.ErrOut)
		return strings.TrimSpace(string(b)), err
	}
	if s.inReader == nil {
		s.inReader = bufio.NewReader(s.In)
	}
	line, err := s.inReader.ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimSpace(line), nil
}
