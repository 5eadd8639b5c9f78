package currents

import (
	"io"

	"github.com/benthosdev/benthos/v4/public/service"

	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// classUnreadable is the failure class (metric label, checkpoint class) of
// an object that could not be read whole from its source: the input's
// bucket kept failing to serve it (access denied, bodies cut short, the
// network) for max_read_attempts reads in a row, or the stock input under
// the scanner lost its connection mid-object. Never a decode class: a
// transport fault is not a corrupt file.
const classUnreadable = "unreadable"

// newFailureCounters returns the counters of objects failed and decode
// errors, by class, that the input and the scanner share: every series at
// 0 from the start for every class either counts, because an alert's
// `increase(...) > 0` sees nothing of a series that first appears at 1.
func newFailureCounters(met *service.Metrics) (failed, decodeErr *service.MetricCounter) {
	failed = met.NewCounter("currents_objects_failed", "class")
	decodeErr = met.NewCounter("currents_decode_errors", "class")
	for _, class := range decoder.ErrorClasses() {
		failed.Incr(0, class)
		decodeErr.Incr(0, class)
	}
	failed.Incr(0, classUnreadable)
	failed.Incr(0, bciClassRejected)
	return failed, decodeErr
}

// objectReader counts the bytes read from an object's source and keeps the
// first error of the source, which tells a network failure from a corrupt
// object: the decoder reports both as a truncated read.
type objectReader struct {
	r   io.Reader
	n   int64
	eof bool // the source ended cleanly: n is all it served
	err error
}

func (c *objectReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	switch {
	case err == io.EOF:
		c.eof = true
	case err != nil && c.err == nil:
		c.err = err
	}
	return n, err
}

// short reports a source that ended cleanly before size bytes (size 0:
// unknown): the bytes were lost on the way.
func (c *objectReader) short(size int64) bool {
	return c.eof && size > 0 && c.n < size
}
