package live

import (
	"cmp"
	"strings"
)

// compareNumbers orders decimal fragment numbers numerically, like cmp.Compare. Numbers
// minted by this server all have 47 digits (spec 5.4), so plain string order would do for
// them, but a client's AfterFragmentNumber may have 1 to 128 digits (spec 5.1). "" orders
// before every number.
func compareNumbers(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}
