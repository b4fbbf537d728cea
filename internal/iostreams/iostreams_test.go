package iostreams

import (
	"strings"
	"testing"
)

func TestPromptRefusedWithoutTerminal(t *testing.T) {
	for _, tty := range [][3]bool{{false, false, false}, {false, true, true}, {true, true, false}} {
		s, in, out, errOut := Test()
		s.SetTTY(tty[0], tty[1], tty[2])
		in.WriteString("123456\n")
		if s.CanPrompt() {
			t.Fatalf("CanPrompt with stdin %v, stderr %v", tty[0], tty[2])
		}
		_, err := s.Prompt("MFA code for x: ")
		if err == nil || err.Error() != `cannot ask "MFA code for x:": not running in a terminal` {
			t.Errorf("tty %v: err = %v", tty, err)
		}
		if out.Len() != 0 || errOut.Len() != 0 || in.Len() != 7 {
			t.Errorf("tty %v: wrote %q/%q or read stdin", tty, out, errOut)
		}
	}
}

func TestPromptOnErrOut(t *testing.T) {
	s, in, out, errOut := Test()
	s.SetTTY(true, false, true)
	in.WriteString(" 123456 \nsecond\n")
	got, err := s.Prompt("Code: ")
	if err != nil || got != "123456" {
		t.Fatalf("%q %v", got, err)
	}
	got, err = s.Prompt("Again: ")
	if err != nil || got != "second" {
		t.Fatalf("second answer %q %v", got, err)
	}
	if errOut.String() != "Code: Again: " || out.Len() != 0 {
		t.Fatalf("stderr %q stdout %q", errOut, out)
	}
	if _, err := s.Prompt("More: "); err == nil {
		t.Fatal("no error at end of input")
	}
}

func TestTTYAndWidth(t *testing.T) {
	s, _, _, _ := Test()
	if s.IsStdoutTTY() || s.IsStderrTTY() || s.TerminalWidth() != 80 {
		t.Fatal("test streams are not terminals, width 80")
	}
	s.SetTTY(false, true, true)
	s.SetWidth(120)
	if !s.IsStdoutTTY() || !s.IsStderrTTY() || s.TerminalWidth() != 120 {
		t.Fatal("SetTTY/SetWidth")
	}
	if (&IOStreams{}).TerminalWidth() != 80 {
		t.Fatal("zero IOStreams width")
	}
	_ = strings.TrimSpace
}
