package transform

import "errors"

// checkGlob validates an attribute-name pattern: '*' matches any run of
// characters (none included), '?' exactly one, and '\' makes the next
// character literal. Nothing else is special, so "aws:rep:*" and names
// with '/', '.' or '[' mean what they say.
func checkGlob(pattern string) error {
	if pattern == "" {
		return errors.New("empty pattern")
	}
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '\\' {
			if i == len(pattern)-1 {
				return errors.New(`the pattern ends with an escaping '\'`)
			}
			i++
		}
	}
	return nil
}

// matchGlob reports whether name matches a pattern checkGlob accepted.
// It runs in O(len(pattern)·len(name)) time whatever the pattern.
func matchGlob(pattern, name string) bool {
	p := []rune(pattern)
	n := []rune(name)
	pi, ni := 0, 0
	starP, starN := -1, 0
	for ni < len(n) {
		if pi < len(p) {
			switch c := p[pi]; {
			case c == '*':
				starP, starN = pi, ni
				pi++
				continue
			case c == '?':
				pi++
				ni++
				continue
			case c == '\\' && pi+1 < len(p):
				if p[pi+1] == n[ni] {
					pi += 2
					ni++
					continue
				}
			case c == n[ni]:
				pi++
				ni++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last '*' swallow one more character and retry.
		starN++
		pi, ni = starP+1, starN
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
