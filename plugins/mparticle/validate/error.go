package validate

import (
	"fmt"
	"strings"
)

// Code classifies a Violation so that callers (tests, the emulator, dead-letter
// reasons) can tell a limit breach from a schema breach without parsing messages.
type Code string

// Violation codes.
const (
	// CodeMalformed: the body is not JSON, or not the expected JSON shape at all.
	CodeMalformed Code = "malformed"
	// CodeRequired: a required field is missing, null where null is not allowed, or empty.
	CodeRequired Code = "required"
	// CodeType: a field has the wrong JSON type.
	CodeType Code = "type"
	// CodeEnum: a field's value is not one of the accepted values.
	CodeEnum Code = "enum"
	// CodeFormat: a string does not have the required format (UUID, IP address).
	CodeFormat Code = "format"
	// CodeUnknownField: a field is not allowed in a closed object.
	CodeUnknownField Code = "unknown_field"
	// CodeLimit: a size or count limit is exceeded.
	CodeLimit Code = "limit"
)

// MaxViolations bounds how many violations one Error lists; a badly broken request
// would otherwise produce an error as large as the request itself.
const MaxViolations = 100

// Violation is one broken rule.
type Violation struct {
	// Path locates the offending value in JSON-path-like form, e.g.
	// "events[0].data.source_message_id"; it is empty for the document itself.
	Path string
	// Code classifies the violation.
	Code Code
	// Message says what is wrong, in the style of mParticle's 400 messages.
	Message string
}

// String renders the violation as "path: message" (message alone at the root).
func (v Violation) String() string {
	if v.Path == "" {
		return v.Message
	}
	return v.Path + ": " + v.Message
}

// Error is the error returned by Batch and BulkRequest: every violation found,
// in document order, up to MaxViolations.
type Error struct {
	// Violations lists the broken rules, in document order.
	Violations []Violation
	// Omitted counts the violations found beyond MaxViolations and left out.
	Omitted int
}

// Error joins the violations one per line, so its first line reads like the
// message of mParticle's 400 response.
func (e *Error) Error() string {
	var b strings.Builder
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(v.String())
	}
	if e.Omitted > 0 {
		fmt.Fprintf(&b, "\n(%d more violations omitted)", e.Omitted)
	}
	return b.String()
}

// Has reports whether any violation carries the given code; tests and callers use
// it to tell, say, a limit breach from a malformed batch.
func (e *Error) Has(code Code) bool {
	for _, v := range e.Violations {
		if v.Code == code {
			return true
		}
	}
	return false
}
