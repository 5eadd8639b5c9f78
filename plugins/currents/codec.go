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
	return nil, fmt.Errorf("%q (supported: null, deflate, snappy, zstandard)", name)
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
	d.src.Reset(src)
	if d.r == nil {
		d.r = flate.NewReader(&d.src)
	} else if err := d.r.(flate.Resetter).Reset(&d.src, nil); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(src) * 4)
	n, err := io.Copy(&out, io.LimitReader(d.r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(limit) {
		return nil, errTooLarge
	}
	return out.Bytes(), nil
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
	dec   *zstd.Decoder
	limit int
}

func (z *zstdCodec) decode(src []byte, limit int) ([]byte, error) {
	if z.dec == nil || z.limit != limit {
		if z.dec != nil {
			z.dec.Close()
		}
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)))
		if err != nil {
			return nil, err
		}
		z.dec, z.limit = dec, limit
	}
	return z.dec.DecodeAll(src, nil)
}

func (z *zstdCodec) close() {
	if z.dec != nil {
		z.dec.Close()
	}
}
