package dynamo

import (
	"strconv"
	"strings"
)

// CanonicalNumber returns a canonical text for a DynamoDB number so that
// two numbers are equal exactly when their canonical texts are equal:
// "1.50", "1.5" and "15e-1" all give "15e-1"; "100" and "1e2" give "1e2";
// "-0" and "0.000" give "0". It works on the decimal digits, never through
// float64, so all 38 significant digits count. Text that is not a number
// is returned unchanged.
func CanonicalNumber(s string) string {
	t := strings.TrimSpace(s)
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	mant, expPart, hasExp := strings.Cut(strings.ToLower(t), "e")
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expPart)
		if err != nil {
			return s
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" && frac == "" {
		return s
	}
	digits := intPart + frac
	for _, r := range digits {
		if r < '0' || r > '9' {
			return s
		}
	}
	exp -= len(frac)
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0"
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(trimmed)
	if exp != 0 {
		b.WriteByte('e')
		b.WriteString(strconv.Itoa(exp))
	}
	return b.String()
}
