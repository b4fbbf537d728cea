//go:build unix

package status

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReport delivers SIGUSR1 on ch, as restic does for a status report.
func notifyReport(ch chan os.Signal) (stop func()) {
	signal.Notify(ch, syscall.SIGUSR1)
	return func() { signal.Stop(ch) }
}
