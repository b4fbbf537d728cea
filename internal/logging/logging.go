// Package logging builds the zap logger of a run from a writer, a level
// and a format: "text" gives the human format of the original ddb-sync,
//
//	2006/01/02 15:04:05 [src-table] ⇨ [dst-table]: message key=value
//
// where info lines carry no level and others start with it (WARN, ERROR,
// DEBUG) before the entry, and "json" one JSON object a line for machines:
//
//	{"level":"info","time":"2006-01-02T15:04:05.000Z","entry":"[src-table] ⇨ [dst-table]","msg":"message","key":"value"}
package logging

import (
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Formats lists the accepted --log-format values.
var Formats = []string{"text", "json"}

// Levels lists the accepted --log-level values.
var Levels = []string{"debug", "info", "warn", "error"}

// Options configure New.
type Options struct {
	Format string // text (default) or json
	Level  string // info (default)
}

// New builds a logger writing to w. Its Sync never fails the run.
func New(w io.Writer, o Options) (*zap.Logger, error) {
	lvl := zapcore.InfoLevel
	if o.Level != "" {
		if err := lvl.UnmarshalText([]byte(o.Level)); err != nil {
			return nil, fmt.Errorf("--log-level %q is not one of %s", o.Level, strings.Join(Levels, ", "))
		}
	}
	var enc zapcore.Encoder
	switch o.Format {
	case "", "text":
		enc = newTextEncoder(zapcore.EncoderConfig{
			TimeKey:          "ts",
			MessageKey:       "msg",
			NameKey:          "entry",
			LevelKey:         "level",
			EncodeTime:       zapcore.TimeEncoderOfLayout("2006/01/02 15:04:05"),
			EncodeLevel:      textLevel,
			EncodeName:       func(name string, enc zapcore.PrimitiveArrayEncoder) { enc.AppendString(name + ":") },
			EncodeDuration:   zapcore.StringDurationEncoder,
			ConsoleSeparator: " ",
		})
	case "json":
		enc = zapcore.NewJSONEncoder(zapcore.EncoderConfig{
			TimeKey:        "time",
			LevelKey:       "level",
			NameKey:        "entry",
			MessageKey:     "msg",
			EncodeTime:     zapcore.ISO8601TimeEncoder,
			EncodeLevel:    zapcore.LowercaseLevelEncoder,
			EncodeDuration: zapcore.StringDurationEncoder,
		})
	default:
		return nil, fmt.Errorf("--log-format %q is not one of %s", o.Format, strings.Join(Formats, ", "))
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

// textLevel prints nothing for info, so ordinary lines read like the
// original tool's, and the level in capitals otherwise.
func textLevel(l zapcore.Level, enc zapcore.PrimitiveArrayEncoder) {
	if l == zapcore.InfoLevel {
		return
	}
	enc.AppendString(l.CapitalString())
}

// ForEntry returns the logger of one input → output pair: its lines start
// with "[input] ⇨ [output]:".
func ForEntry(l *zap.Logger, input, output string) *zap.Logger {
	return l.Named(fmt.Sprintf("[%s] ⇨ [%s]", input, output))
}

// Nop is a logger that discards everything; engines default to it.
func Nop() *zap.Logger { return zap.NewNop() }

// Since formats an elapsed time for log lines: 5m9s.
func Since(start time.Time) string {
	return time.Since(start).Round(time.Second).String()
}
