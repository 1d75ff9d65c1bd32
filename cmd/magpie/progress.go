package main

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// byteBar shows the progress of a backup, restore or verify: bytes, the
// rate, documents so far and, when the total is known, the time left. It draws only when
// standard error is a terminal, so scripts and logs get the result alone.
type byteBar struct {
	bar  *progressbar.ProgressBar
	what string
	base int64 // bytes of the files already done (restore, verify)
	last int64
	// docs counts the documents so far (backup and restore fill it).
	docs  atomic.Int64
	shown int64
}

func newByteBar(cmd *cobra.Command, what string, total int64) *byteBar {
	f, ok := cmd.ErrOrStderr().(*os.File)
	if !ok {
		return &byteBar{}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return &byteBar{}
	}
	return &byteBar{what: what, bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(total > 0),
		progressbar.OptionThrottle(100_000_000), // 100 ms
		progressbar.OptionClearOnFinish(),
	)}
}

// set reports the bytes done so far.
func (b *byteBar) set(n int64) {
	if b.bar == nil {
		return
	}
	if d := b.docs.Load(); d != b.shown {
		b.shown = d
		b.bar.Describe(fmt.Sprintf("%s: %d documents", b.what, d))
	}
	b.bar.Set64(n)
}

// add reports bytes of the current file, counted from 0 for each file.
func (b *byteBar) add(n int64) {
	if n < b.last {
		b.base += b.last
	}
	b.last = n
	b.set(b.base + n)
}

// fileProgress is add, for callers that count from 0 in each file.
func (b *byteBar) fileProgress() func(int64) { return b.add }

func (b *byteBar) finish() {
	if b.bar != nil {
		b.bar.Finish()
	}
}
