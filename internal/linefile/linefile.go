// Package linefile appends whole lines to a file: a reader of the file (a
// dead-letter replay, a diff of dry-run requests) never meets half a line.
// A write that fails part-way (a full disk) is cut back to the last line
// end before its error is returned, so a retry of the same line does not
// glue onto half of it; and opening a file that a killed writer left with a
// torn last line cuts that tail off first.
package linefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is a file written a whole line at a time. Not safe for concurrent
// use; other processes may append to the same file (each line is one
// write in append mode, which the system keeps whole between writers).
type File struct {
	f       *os.File
	durable bool
}

// Options say how a File is written.
type Options struct {
	// Truncate starts the file empty.
	Truncate bool
	// Durable fsyncs every line before Write returns, so that a line that
	// was written survives a power cut (a dead letter, acknowledged
	// upstream once written).
	Durable bool
}

// Open opens path for appending whole lines, creating it and its folder.
// torn is the number of bytes of a last line without its newline that it
// cut off.
func Open(path string, opts Options) (f *File, torn int64, err error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, 0, err
		}
	}
	flag := os.O_CREATE | os.O_RDWR | os.O_APPEND
	if opts.Truncate {
		flag |= os.O_TRUNC
	}
	osf, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, 0, err
	}
	whole, err := wholeLines(osf)
	if err == nil {
		st, serr := osf.Stat()
		if err = serr; err == nil {
			torn = st.Size() - whole
			if torn > 0 {
				err = osf.Truncate(whole)
			}
		}
	}
	if err != nil {
		_ = osf.Close()
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return &File{f: osf, durable: opts.Durable}, torn, nil
}

// wholeLines returns the length of f up to and including its last newline.
func wholeLines(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 4096)
	for end := st.Size(); end > 0; {
		start := max(end-int64(len(buf)), 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// Write appends line, and a newline unless it ends in one, in one write,
// fsynced when the File is durable. On failure the part of it written is
// cut off again (when nothing was appended after it meanwhile).
func (f *File) Write(line []byte) error {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		line = append(line[:len(line):len(line)], '\n')
	}
	n, err := f.f.Write(line)
	if err == nil && n < len(line) {
		err = io.ErrShortWrite
	}
	if err == nil {
		if f.durable {
			return f.f.Sync()
		}
		return nil
	}
	if n > 0 {
		if cerr := f.cutBack(int64(n)); cerr != nil {
			return errors.Join(err, fmt.Errorf("cutting back the torn line: %w", cerr))
		}
	}
	return err
}

// cutBack removes the n bytes this File just wrote at the end of the file.
// When another process appended after them meanwhile (two writers and a
// full disk at once) they stay, and the error says so.
func (f *File) cutBack(n int64) error {
	end, err := f.f.Seek(0, io.SeekCurrent) // after our bytes, in append mode
	if err != nil {
		return err
	}
	st, err := f.f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != end {
		return errors.New("another writer appended after the torn line")
	}
	return f.f.Truncate(end - n)
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }
