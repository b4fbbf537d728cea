package chaos

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the process die with the test binary (a test killed
// by its timeout leaves no worker behind).
func dieWithTest(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
