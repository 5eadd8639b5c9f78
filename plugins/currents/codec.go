package currents

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
)

// The codec names of the Avro specification, as found in "avro.codec".
const (
	CodecNull      = "null"
	CodecDeflate   = "deflate"
	CodecSnappy    = "snappy"
	CodecZstandard = "zstandard"
)

// blockCodec turns a block's stored bytes into a buffer of decoded bytes that
// the caller owns (events point into it, so it is never reused). Every codec
// but null decodes into a fresh buffer; null returns its input.
type blockCodec interface {
	decode(src []byte, limit int) ([]byte, error)
	close()
}

func newBlockCodec(name string) (blockCodec, error) {
	switch name {
	case "", CodecNull:
		return nullCodec{}, nil
	case CodecDeflate:
		return &deflateCodec{}, nil
	case CodecSnappy:
		return snappyCodec{}, nil
	case CodecZstandard:
		return &zstdCodec{}, nil
	}
	return nil, fmt.Errorf("%s (supported: null, deflate, snappy, zstandard)", quote(name))
}

var errTooLarge = errors.New("decoded block larger than the limit")

type nullCodec struct{}

// decode returns src itself: for the null codec the reader reads each block
// into a buffer of its own (see Reader.readBlock), so there is nothing to copy.
func (nullCodec) decode(src []byte, _ int) ([]byte, error) {
	return src, nil
}
func (nullCodec) close() {}

type deflateCodec struct {
	r   io.ReadCloser
	src bytes.Reader
}

func (d *deflateCodec) decode(src []byte, limit int) ([]byte, error) {
	open := func() (io.Reader, error) {
		d.src.Reset(src)
		if d.r == nil {
			d.r = flate.NewReader(&d.src)
			return d.r, nil
		}
		return d.r, d.r.(flate.Resetter).Reset(&d.src, nil)
	}
	return readLimited(open, len(src)*4, limit)
}

// eagerDecodeBytes is the most decoded output kept while its size is
// unknown. Past it the rest is counted, not kept, and a block within the
// limit is decoded a second time into one buffer of the size now known: a
// decompression bomb costs these bytes, not the decoded-bytes limit, and only
// blocks far larger than Braze's pay for a second pass.
const eagerDecodeBytes = 16 << 20

// readLimited reads the stream open returns to its end into one buffer of
// exactly the decoded size, and stops with errTooLarge as soon as more than
// limit bytes come out: a bomb is never inflated past the limit. Past a first
// buffer of guess bytes, the output goes into chunks that double the total
// and are joined at the end (one growing buffer would copy everything at
// each growth and cost 1.5× at the last).
func readLimited(open func() (io.Reader, error), guess, limit int) ([]byte, error) {
	r, err := open()
	if err != nil {
		return nil, err
	}
	keep := min(limit, eagerDecodeBytes)
	buf := make([]byte, min(max(guess, 4<<10), keep+1))
	n, eof, err := fill(r, buf)
	if err != nil {
		return nil, err
	}
	if eof {
		return buf[:n], nil
	}
	chunks := [][]byte{buf}
	total := n
	for !eof && total <= keep {
		c := make([]byte, min(total, keep+1-total))
		if n, eof, err = fill(r, c); err != nil {
			return nil, err
		}
		chunks = append(chunks, c[:n])
		total += n
	}
	if total > limit {
		return nil, errTooLarge
	}
	if eof {
		out := make([]byte, 0, total)
		for _, c := range chunks {
			out = append(out, c...)
		}
		return out, nil
	}
	// Larger than what is kept: count the rest through a small buffer.
	chunks = nil
	scratch := make([]byte, 32<<10)
	for !eof {
		if n, eof, err = fill(r, scratch); err != nil {
			return nil, err
		}
		if total += n; total > limit {
			return nil, errTooLarge
		}
	}
	if r, err = open(); err != nil {
		return nil, err
	}
	out := make([]byte, total)
	if n, _, err = fill(r, out); err != nil || n != total {
		return nil, fmt.Errorf("decoded %d bytes, then %d: %v", total, n, err)
	}
	return out, nil
}

// fill reads from r until buf is full or r ends (eof). Unlike io.ReadFull it
// tells the end of the stream from a full buffer, and passes on the
// reader's own io.ErrUnexpectedEOF (a truncated deflate stream) as an error.
func fill(r io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}

func (d *deflateCodec) close() {}

type snappyCodec struct{}

// decode checks the big-endian CRC-32 of the decoded bytes that the Avro
// specification appends to every snappy block.
func (snappyCodec) decode(src []byte, limit int) ([]byte, error) {
	if len(src) < 5 {
		return nil, errors.New("snappy block shorter than its checksum")
	}
	body := src[:len(src)-4]
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errTooLarge
	}
	out, err := snappy.Decode(make([]byte, n), body)
	if err != nil {
		return nil, err
	}
	if crc32.ChecksumIEEE(out) != binary.BigEndian.Uint32(src[len(src)-4:]) {
		return nil, errors.New("snappy checksum mismatch")
	}
	return out, nil
}
func (snappyCodec) close() {}

type zstdCodec struct {
	dec    *zstd.Decoder // DecodeAll into a buffer of the caller's size
	stream *zstd.Decoder // counts a block's decoded bytes when its size is unknown
	limit  int
}

// decode decodes into one buffer of the block's size. The size a frame
// declares is only a claim: it is trusted up to eagerDecodeBytes; beyond that,
// or when a frame does not say it, the decoded bytes are counted first,
// without keeping them, so a bomb is refused at the limit with no buffer of
// that size.
func (z *zstdCodec) decode(src []byte, limit int) ([]byte, error) {
	if z.dec == nil || z.limit != limit {
		z.close()
		opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit))}
		dec, err := zstd.NewReader(nil, append(opts, zstd.WithDecodeAllCapLimit(true))...)
		if err != nil {
			return nil, err
		}
		stream, err := zstd.NewReader(nil, opts...)
		if err != nil {
			dec.Close()
			return nil, err
		}
		z.dec, z.stream, z.limit = dec, stream, limit
	}
	var h zstd.Header
	if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize <= uint64(min(limit, eagerDecodeBytes)) {
		out, err := z.dec.DecodeAll(src, make([]byte, 0, h.FrameContentSize))
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return out, zstdErr(err)
		}
		// More frames than the first one said: count them below.
	}
	if err := z.stream.Reset(bytes.NewReader(src)); err != nil {
		return nil, zstdErr(err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(z.stream, int64(limit)+1))
	if err != nil {
		return nil, zstdErr(err)
	}
	if n > int64(limit) {
		return nil, errTooLarge
	}
	out, err := z.dec.DecodeAll(src, make([]byte, 0, n))
	return out, zstdErr(err)
}

func zstdErr(err error) error {
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return errTooLarge
	}
	return err
}

func (z *zstdCodec) close() {
	if z.dec != nil {
		z.dec.Close()
		z.stream.Close()
		z.dec, z.stream = nil, nil
	}
}
