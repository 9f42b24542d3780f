package api

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Validator collects model-constraint violations and reports them the way
// AWS's Coral framework words them, e.g. "1 validation error detected: Value
// 'a b' at 'streamName' failed to satisfy constraint: Member must satisfy
// regular expression pattern: [a-zA-Z0-9_.-]+".
type Validator struct{ problems []string }

// field turns a model member path ("StreamNameCondition.ComparisonValue")
// into Coral's spelling ("streamNameCondition.comparisonValue").
func field(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToLower(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, ".")
}

func (v *Validator) add(name, value, rule string) {
	v.problems = append(v.problems, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", value, field(name), rule))
}

func quote(s string) string { return "'" + s + "'" }

// Required records a missing required member.
func (v *Validator) Required(name string, present bool) {
	if !present {
		v.add(name, "null", "Member must not be null")
	}
}

// String checks an optional string member: nil is absent and always valid.
// min and max count Unicode characters as the models do; pattern may be nil.
func (v *Validator) String(name string, s *string, min, max int, pattern *regexp.Regexp) {
	if s == nil {
		return
	}
	v.Text(name, *s, min, max, pattern)
}

// Text checks a present string against length bounds and an anchored pattern.
func (v *Validator) Text(name string, s string, min, max int, pattern *regexp.Regexp) {
	n := utf8.RuneCountInString(s)
	switch {
	case n < min:
		v.add(name, quote(s), fmt.Sprintf("Member must have length greater than or equal to %d", min))
	case n > max:
		v.add(name, quote(s), fmt.Sprintf("Member must have length less than or equal to %d", max))
	case pattern != nil && !pattern.MatchString(s):
		v.add(name, quote(s), "Member must satisfy regular expression pattern: "+Pattern(pattern))
	}
}

// Enum checks an optional enum member.
func (v *Validator) Enum(name string, s *string, values ...string) {
	if s == nil {
		return
	}
	for _, ok := range values {
		if *s == ok {
			return
		}
	}
	v.add(name, quote(*s), "Member must satisfy enum value set: ["+strings.Join(values, ", ")+"]")
}

// Range checks an optional integer member against inclusive bounds.
func (v *Validator) Range(name string, n *int64, min, max int64) {
	if n == nil {
		return
	}
	switch {
	case *n < min:
		v.add(name, fmt.Sprint(*n), fmt.Sprintf("Member must have value greater than or equal to %d", min))
	case *n > max:
		v.add(name, fmt.Sprint(*n), fmt.Sprintf("Member must have value less than or equal to %d", max))
	}
}

// Count checks the number of entries of a list or map member.
func (v *Validator) Count(name string, n, min, max int) {
	switch {
	case n < min:
		v.add(name, fmt.Sprintf("[%d entries]", n), fmt.Sprintf("Member must have length greater than or equal to %d", min))
	case n > max:
		v.add(name, fmt.Sprintf("[%d entries]", n), fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
}

// Err returns the collected violations as one InvalidArgumentException, or nil.
func (v *Validator) Err() error {
	switch len(v.problems) {
	case 0:
		return nil
	case 1:
		return InvalidArgument("1 validation error detected: %s", v.problems[0])
	default:
		return InvalidArgument("%d validation errors detected: %s", len(v.problems), strings.Join(v.problems, "; "))
	}
}

// Pattern returns the model's spelling of an anchored pattern built by Match.
func Pattern(re *regexp.Regexp) string {
	s := re.String()
	return strings.TrimSuffix(strings.TrimPrefix(s, "^(?:"), ")$")
}

// Match compiles a model pattern anchored at both ends, as the models mean it.
func Match(model string) *regexp.Regexp { return regexp.MustCompile("^(?:" + model + ")$") }
