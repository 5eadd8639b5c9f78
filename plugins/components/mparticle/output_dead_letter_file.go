package mparticle

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/internal/linefile"
)

const (
	// DeadLetterFileName is the dead_letter_file output's name.
	DeadLetterFileName  = "dead_letter_file"
	dlfFieldPath        = "path"
	dlfDefaultMaxFlight = 1
)

func deadLetterFileSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Local").
		Version("0.1.0").
		Summary("Appends each message as one line to a file: whole lines only, so a dead letter replays line by line whatever happened while it was written.").
		Description(`
Benthos's `+"`file`"+` output writes a message and its newline in two writes; a full disk or a kill
between them leaves half a line, and the retried message is glued onto it, so the replay of a
dead letter cannot read either event. This output writes each message and its newline in one
write, in append mode (other processes may append to the same file), and fsyncs it before the
message is acknowledged, so a dead letter survives a power cut; a write that fails part-way (a full disk) is cut back to the last whole line before the
error is returned (Benthos then retries the message, which lands whole once there is room); and
a file whose last line a killed process tore is cut back to its last whole line when it is
opened again. The message that was being written is still unacknowledged after a kill, so it is
written again by the next run.

The path is interpolated per message (a dated file per day, for instance); a new path closes
the previous file. Folders are created as needed. Messages are written one at a time, in the
order they come.`).
		Fields(
			service.NewInterpolatedStringField(dlfFieldPath).
				Description("The file to append to, interpolated per message.").
				Example(`./dead-letter/delivery-${! now().ts_format("2006-01-02") }.jsonl`),
		).
		Example("The mparticle output's dead letter", "What mParticle refuses for good goes to a dated file, one JSON line per event with its reason; a feed paused for now goes back to the input instead.", `
output:
  fallback:
    - mparticle:
        pod: eu1
        feeds:
          all: { key: "${MPARTICLE_KEY}", secret: "${MPARTICLE_SECRET}" }
    - switch:
        cases:
          - check: '@fallback_error.has_prefix("mparticle feed_paused")'
            output:
              reject: '${! @fallback_error }'
          - output:
              dead_letter_file:
                path: ./dead-letter/delivery-${! now().ts_format("2006-01-02") }.jsonl
              processors:
                - mapping: |
                    root.reason = @fallback_error
                    root.event_id = @mparticle_event_id
                    root.batch = this
`)
}

func init() {
	err := service.RegisterOutput(DeadLetterFileName, deadLetterFileSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Output, int, error) {
			path, err := conf.FieldInterpolatedString(dlfFieldPath)
			if err != nil {
				return nil, 0, err
			}
			return &deadLetterFile{path: path, log: mgr.Logger()}, dlfDefaultMaxFlight, nil
		})
	if err != nil {
		panic(err)
	}
}

// deadLetterFile is the dead_letter_file output: internal/linefile over an
// interpolated path.
type deadLetterFile struct {
	path *service.InterpolatedString
	log  *service.Logger

	mu      sync.Mutex
	current string
	file    *linefile.File
}

func (d *deadLetterFile) Connect(context.Context) error { return nil }

func (d *deadLetterFile) Write(_ context.Context, msg *service.Message) error {
	path, err := d.path.TryString(msg)
	if err != nil {
		return fmt.Errorf("%s: %w", dlfFieldPath, err)
	}
	path = filepath.Clean(path)
	line, err := msg.AsBytes()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.file == nil || path != d.current {
		if d.file != nil {
			if err := d.file.Close(); err != nil {
				d.log.Warnf("%s: closing %s: %v", DeadLetterFileName, d.current, err)
			}
			d.file = nil
		}
		// Durable: an event acknowledged upstream once its line is
		// written must survive a power cut.
		f, torn, err := linefile.Open(path, linefile.Options{Durable: true})
		if err != nil {
			return err
		}
		if torn > 0 {
			d.log.Warnf("%s: %s ended in %d bytes of a torn line (a process killed while writing it); cut off, its message is written again whole", DeadLetterFileName, path, torn)
		}
		d.file, d.current = f, path
	}
	return d.file.Write(line)
}

func (d *deadLetterFile) Close(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.file == nil {
		return nil
	}
	err := d.file.Close()
	d.file = nil
	return err
}
