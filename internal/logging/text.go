package logging

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// textEncoder writes the human format: zap's console encoder for the
// header ("2006/01/02 15:04:05 LEVEL [in] ⇨ [out]: message") and the
// fields as key=value pairs, strings quoted when they need it. Fields
// added with Logger.With come first, sorted by key, then the fields of
// the call in their order.
type textEncoder struct {
	*zapcore.MapObjectEncoder // fields added with With
	header                    zapcore.Encoder
}

func newTextEncoder(cfg zapcore.EncoderConfig) zapcore.Encoder {
	return &textEncoder{MapObjectEncoder: zapcore.NewMapObjectEncoder(), header: zapcore.NewConsoleEncoder(cfg)}
}

func (e *textEncoder) Clone() zapcore.Encoder {
	c := &textEncoder{MapObjectEncoder: zapcore.NewMapObjectEncoder(), header: e.header}
	for k, v := range e.Fields {
		c.Fields[k] = v
	}
	return c
}

func (e *textEncoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	buf, err := e.header.EncodeEntry(ent, nil)
	if err != nil {
		return nil, err
	}
	line := strings.TrimSuffix(buf.String(), "\n")
	stack := ""
	if i := strings.IndexByte(line, '\n'); i >= 0 { // a stack trace
		line, stack = line[:i], line[i:]
	}
	buf.Reset()
	buf.AppendString(line)
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		appendPair(buf, k, e.Fields[k])
	}
	for _, f := range fields {
		m := zapcore.NewMapObjectEncoder()
		f.AddTo(m)
		ks := make([]string, 0, len(m.Fields))
		for k := range m.Fields {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			appendPair(buf, k, m.Fields[k])
		}
	}
	buf.AppendString(stack)
	buf.AppendByte('\n')
	return buf, nil
}

func appendPair(buf *buffer.Buffer, k string, v any) {
	buf.AppendByte(' ')
	buf.AppendString(k)
	buf.AppendByte('=')
	buf.AppendString(formatValue(v))
}

func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return quoteIfNeeded(v)
	case []byte:
		return quoteIfNeeded(string(v))
	case fmt.Stringer:
		return quoteIfNeeded(v.String())
	case error:
		return quoteIfNeeded(v.Error())
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			return quoteIfNeeded(fmt.Sprint(v))
		}
		return string(b)
	default:
		return quoteIfNeeded(fmt.Sprint(v))
	}
}

func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
