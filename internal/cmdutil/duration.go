package cmdutil

import (
	"fmt"
	"strconv"
	"time"
)

// MillisDuration is a duration flag that also takes a plain number of
// milliseconds, as the original diff tool's --retry-delay-base did.
type MillisDuration struct{ D *time.Duration }

func (m MillisDuration) String() string {
	if m.D == nil {
		return "0s"
	}
	return m.D.String()
}

// Set parses "250", "250ms" or "1s".
func (m MillisDuration) Set(s string) error {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		*m.D = time.Duration(n * float64(time.Millisecond))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither milliseconds nor a duration such as 250ms", s)
	}
	*m.D = d
	return nil
}

// Type names the flag's value in help.
func (m MillisDuration) Type() string { return "duration" }
