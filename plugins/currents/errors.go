package currents

import (
	"errors"
	"fmt"
)

// The classes of bad input a Reader reports. Test with errors.Is.
var (
	ErrNotContainer    = errors.New("not an Avro object container file")
	ErrTruncatedHeader = errors.New("truncated container header")
	ErrBadSchema       = errors.New("writer schema does not parse")
	ErrUnknownCodec    = errors.New("unknown codec")
	ErrBadSync         = errors.New("sync marker mismatch")
	ErrTruncatedBlock  = errors.New("truncated block")
	ErrCorruptBlock    = errors.New("corrupt block")
	// ErrLimitExceeded: the object may be valid Avro, but decoding it would
	// cost more than a limit of ReaderOptions allows. The cause is a
	// *LimitError naming the limit.
	ErrLimitExceeded = errors.New("decode limit exceeded")
)

// errorClasses are the classes above, in order.
var errorClasses = []error{ErrNotContainer, ErrTruncatedHeader, ErrBadSchema, ErrUnknownCodec, ErrBadSync,
	ErrTruncatedBlock, ErrCorruptBlock, ErrLimitExceeded}

// ErrorClasses lists every value ErrorClass returns, "other" last: metrics
// create their series at 0 from these, so that an alert on the increase of
// a failure counter sees the first failure.
func ErrorClasses() []string {
	out := make([]string, 0, len(errorClasses)+1)
	for _, c := range errorClasses {
		out = append(out, c.Error())
	}
	return append(out, "other")
}

// DecodeError is the error of a Reader: it names the object, the byte offset
// in the (compressed) object where the bad part starts, and the block number
// (1-based; 0 for the header), so an operator can find the bytes at fault.
type DecodeError struct {
	Object string // object key or file path, "" when unknown
	Offset int64  // byte offset of the header or block start
	Block  int    // 1-based block number, 0 = header
	Class  error  // one of the Err* classes above
	Err    error  // the cause, may be nil
}

func (e *DecodeError) Error() string {
	where := "header"
	if e.Block > 0 {
		where = fmt.Sprintf("block %d", e.Block)
	}
	obj := e.Object
	if obj == "" {
		obj = "(unnamed)"
	}
	msg := fmt.Sprintf("currents: %s: %s at byte %d: %v", obj, where, e.Offset, e.Class)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is match both the class and the cause.
func (e *DecodeError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Class}
	}
	return []error{e.Class, e.Err}
}

// ErrorClass is the label of an error in metrics, logs and checkpoints: the
// text of its DecodeError's class ("corrupt block", "decode limit
// exceeded"...), or "other" for any other error, nil included.
func ErrorClass(err error) string {
	var de *DecodeError
	if errors.As(err, &de) && de.Class != nil {
		return de.Class.Error()
	}
	return "other"
}
