package mkv

import (
	"errors"
	"fmt"
)

// ErrInvalid matches (with errors.Is) every error caused by malformed EBML or Matroska input.
var ErrInvalid = errors.New("mkv: invalid data")

// ErrTooLarge matches (with errors.Is) an element larger than a configured limit.
var ErrTooLarge = errors.New("mkv: element too large")

// ErrMidFragment matches (with errors.Is) the InvalidError of an input whose first element
// belongs inside a fragment (a Cluster, a Cluster's child, or fragment Tags) instead of being
// an EBML header: a producer that resumed a fragment on a new connection without its
// stream header.
var ErrMidFragment = errors.New("mkv: input starts inside a fragment")

// ErrHeaderTooLarge matches (with errors.Is, as does ErrTooLarge) a stream header larger
// than SplitterOptions.MaxHeaderSize.
var ErrHeaderTooLarge = errors.New("mkv: stream header too large")

// InvalidError reports malformed input at an absolute byte offset of the stream.
// Truncated input wraps io.ErrUnexpectedEOF. Errors of the underlying io.Reader are never
// turned into an InvalidError, so callers can tell a failed read from bad data.
type InvalidError struct {
	Offset int64  // absolute input offset where the problem was found
	Msg    string // what is wrong, naming the element involved
	Err    error  // underlying cause, such as io.ErrUnexpectedEOF, or nil
}

// Error formats the problem with its offset.
func (e *InvalidError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("mkv: invalid data at offset %d: %s: %v", e.Offset, e.Msg, e.Err)
	}
	return fmt.Sprintf("mkv: invalid data at offset %d: %s", e.Offset, e.Msg)
}

// Is makes every InvalidError match ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying cause.
func (e *InvalidError) Unwrap() error { return e.Err }

func invalidf(off int64, format string, args ...any) error {
	return &InvalidError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// headerTooLarge reports that the stream header would grow to total bytes, above limit.
func headerTooLarge(e Element, total, limit int64) error {
	return fmt.Errorf("mkv: stream header would hold %d bytes with the %v at offset %d, limit %d: %w: %w",
		total, e.ID, e.Offset, limit, ErrHeaderTooLarge, ErrTooLarge)
}

// tooLarge reports that buffering element e would take total bytes, above limit.
func tooLarge(e Element, total, limit int64) error {
	return fmt.Errorf("mkv: %v of %d bytes at offset %d: buffer would hold %d bytes, limit %d: %w",
		e.ID, e.Size, e.Offset, total, limit, ErrTooLarge)
}
