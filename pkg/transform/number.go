package transform

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	celtypes "cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// decimal is a DynamoDB number split into its significant digits and a
// power of ten: value = sign × digits × 10^exp, digits without leading or
// trailing zeros ("" for zero).
type decimal struct {
	neg    bool
	digits string
	exp    int
}

// maxExponent bounds the exponents parseDecimal accepts. DynamoDB numbers
// stay within 10^-130 and 10^126; the bound only keeps absurd text (from a
// fuzzer, or a DynamoDB-compatible store that checks less) from building
// huge strings.
const maxExponent = 100000

var errNotNumber = errors.New("not a number")

// parseDecimal reads the text of a DynamoDB number ("-12.50", "1e3",
// ".5"). It works on the digits, never through float64.
func parseDecimal(s string) (decimal, error) {
	var d decimal
	t := s
	if t != "" && (t[0] == '-' || t[0] == '+') {
		d.neg = t[0] == '-'
		t = t[1:]
	}
	mant, expPart, hasExp := strings.Cut(t, "e")
	if !hasExp {
		mant, expPart, hasExp = strings.Cut(t, "E")
	}
	if hasExp {
		if expPart == "" || len(expPart) > 7 {
			return d, errNotNumber
		}
		e, err := strconv.Atoi(expPart)
		if err != nil || e > maxExponent || e < -maxExponent {
			return d, errNotNumber
		}
		d.exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" && frac == "" {
		return d, errNotNumber
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return d, errNotNumber
			}
		}
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	d.exp -= len(frac)
	trimmed := strings.TrimRight(digits, "0")
	d.exp += len(digits) - len(trimmed)
	d.digits = trimmed
	if d.digits == "" {
		d.neg, d.exp = false, 0
	}
	return d, nil
}

// numberToCEL converts the text of a DynamoDB number to a CEL value: an int
// when the number is integral and fits int64 ("5", "5.0" and "5e0" alike),
// a double otherwise (the nearest one: a number with more significant
// digits than a double holds is rounded in the expression, never in an
// attribute that passes through).
func numberToCEL(s string) (ref.Val, error) {
	d, err := parseDecimal(s)
	if err != nil {
		return nil, fmt.Errorf("invalid number %q", s)
	}
	if d.digits == "" {
		return celtypes.Int(0), nil
	}
	if d.exp >= 0 && len(d.digits)+d.exp <= 19 {
		text := d.digits + strings.Repeat("0", d.exp)
		if d.neg {
			text = "-" + text
		}
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return celtypes.Int(i), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %q is out of the range of a double", s)
	}
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("invalid number %q", s)
	}
	// A range error with a finite result is an underflow to 0 or a
	// subnormal: the nearest double, as for any other number.
	return celtypes.Double(f), nil
}

// formatDouble writes a computed double as the text of a DynamoDB number:
// an integral value with all its digits and no exponent ("1e21" becomes
// "1000000000000000000000"), another value with the fewest digits that
// read back as the same double ("0.30000000000000004"), never with an
// exponent. NaN and infinities have no DynamoDB form.
func formatDouble(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("the result %v is not a number DynamoDB can store", f)
	}
	if f == 0 {
		return "0", nil // also -0
	}
	return strconv.FormatFloat(f, 'f', -1, 64), nil
}
