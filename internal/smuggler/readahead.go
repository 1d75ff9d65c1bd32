package smuggler

import (
	"errors"
	"io"
	"sync"
)

// readahead runs a decompressor in its own goroutine, a few buffers ahead
// of the consumer. gzip decoding is single-threaded and costs about as much
// as parsing; on the two-core machines magpie targets, overlapping the two
// is what lets an import keep pace with pebble. (zstd gets the same overlap
// from its own concurrent decoder.)
type readahead struct {
	src  io.ReadCloser
	full chan chunk
	free chan []byte
	done chan struct{}

	cur   chunk // being consumed
	off   int
	close sync.Once
}

var errReadAfterClose = errors.New("smuggler: read after Close")

type chunk struct {
	buf []byte // full buffer, for recycling
	n   int
	err error
}

const (
	readaheadChunk   = 256 << 10
	readaheadBuffers = 4
)

func newReadahead(src io.ReadCloser) *readahead {
	ra := &readahead{
		src:  src,
		full: make(chan chunk, readaheadBuffers),
		free: make(chan []byte, readaheadBuffers),
		done: make(chan struct{}),
	}
	for range readaheadBuffers {
		ra.free <- make([]byte, readaheadChunk)
	}
	go ra.run()
	return ra
}

func (ra *readahead) run() {
	// The goroutine owns src: it closes it on the way out, so Close never
	// waits for a read that may block on a slow network source.
	defer ra.src.Close()
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.done:
			return
		}
		// Fill the whole buffer so the consumer wakes once per chunk. The
		// error (io.EOF included) travels with the bytes read before it.
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = ra.src.Read(buf[n:])
			n += m
		}
		select {
		case ra.full <- chunk{buf, n, err}:
		case <-ra.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	select {
	case <-ra.done:
		return 0, errReadAfterClose
	default:
	}
	for ra.off == ra.cur.n {
		if ra.cur.err != nil {
			return 0, ra.cur.err
		}
		if ra.cur.buf != nil {
			ra.free <- ra.cur.buf
		}
		select {
		case ra.cur = <-ra.full:
			ra.off = 0
		case <-ra.done:
			return 0, errReadAfterClose
		}
	}
	n := copy(p, ra.cur.buf[ra.off:ra.cur.n])
	ra.off += n
	return n, nil
}

// Close tells the goroutine to stop and returns at once. A read already in
// progress in the goroutine finishes (or fails, if the caller closes the
// source) before it exits and closes the decompressor.
func (ra *readahead) Close() error {
	ra.close.Do(func() { close(ra.done) })
	return nil
}
