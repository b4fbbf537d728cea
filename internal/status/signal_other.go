//go:build !unix

package status

import "os"

func notifyReport(chan os.Signal) (stop func()) { return func() {} }
