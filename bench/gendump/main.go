// Command gendump writes a gzip RavenDB export (.ravendbdump) of N LastFm
// documents, ~1 KB of JSON each, for the import benchmark (bench/import.sh).
//
// The content is pseudo-random but shaped like the shared media_subset dump:
// artists, titles and tags are drawn with a Zipf skew from a generated
// vocabulary, so gzip compresses it about as much as real data (4-6x), not
// 100x. The output is a pure function of -n, -first and -seed. Memory is
// constant: documents are written one at a time through a buffered gzip
// stream.
//
// Ids are lastfm/FIRST .. lastfm/FIRST+N-1 (-first, default 1). Importing a
// dump made with another -seed over a database of the same ids changes those
// documents' content (bench/incremental.sh changes 1% of a database so).
//
//	go run ./bench/gendump -n 1000000 -o /tmp/big.ravendbdump
//	go run ./bench/gendump -n 10000 -first 20001 -seed 7 -o /tmp/change.ravendbdump
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

func main() {
	n := flag.Int("n", 1000000, "number of documents")
	out := flag.String("o", "", "output file (.ravendbdump)")
	first := flag.Int("first", 1, "id number of the first document (lastfm/FIRST)")
	seed := flag.Uint64("seed", 1, "PRNG seed")
	level := flag.Int("level", gzip.DefaultCompression, "gzip level")
	flag.Parse()
	if *out == "" || *n < 0 || *first < 1 {
		fmt.Fprintln(os.Stderr, "usage: gendump -n DOCS [-first ID] [-seed S] -o FILE.ravendbdump")
		os.Exit(2)
	}
	if err := run(*n, *first, *out, *seed, *level); err != nil {
		fmt.Fprintln(os.Stderr, "gendump:", err)
		os.Exit(1)
	}
}

func run(n, first int, path string, seed uint64, level int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(fw, level)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(zw, 256<<10)

	g := newGen(seed)
	var raw int64
	w.WriteString(`{"BuildVersion":41004,"Docs":[`)
	buf := make([]byte, 0, 4096)
	for i := first; i < first+n; i++ {
		buf = buf[:0]
		if i > first {
			buf = append(buf, ',')
		}
		buf = g.doc(buf, i)
		raw += int64(len(buf))
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	w.WriteString(`],"Indexes":[]}`)
	if err := w.Flush(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := fw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	avg := 0.0
	if n > 0 {
		avg = float64(raw) / float64(n)
	}
	fmt.Fprintf(os.Stderr, "gendump: %d docs, %d bytes of JSON (avg %.0f B/doc), %d bytes gzip (%.2fx)\n",
		n, raw, avg, st.Size(), float64(raw)/float64(st.Size()))
	return nil
}

type gen struct {
	r       *rand.Rand
	words   []string
	artists []string
	wordZ   *rand.Zipf
	artZ    *rand.Zipf
	tagZ    *rand.Zipf
	tags    []string
	dbTag   string
	t0      time.Time
	modT    time.Time
}

var syllables = strings.Fields(`ka ri mo la ne shi to ru va el an be co de fa go hi ja ku lo mi na pe qu ra se ti um vo wa xi yo ze
	bar cor dun fel gar hol jin kor lum mar nor pol quin ros sal tor ur vin wol yar zen ban ced dor fin gil
	ack ell ing ion ous ent ard ist ock ump`)

// word makes a pronounceable pseudo-word of 1-4 syllables.
func (g *gen) word() string {
	k := 1 + g.r.IntN(3)
	if g.r.IntN(5) == 0 {
		k++
	}
	var sb strings.Builder
	for j := 0; j < k; j++ {
		sb.WriteString(syllables[g.r.IntN(len(syllables))])
	}
	return sb.String()
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func newGen(seed uint64) *gen {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &gen{r: r}
	g.words = make([]string, 50000)
	for i := range g.words {
		g.words[i] = g.word()
	}
	g.artists = make([]string, 40000)
	for i := range g.artists {
		k := 1 + r.IntN(3)
		parts := make([]string, k)
		for j := range parts {
			parts[j] = capitalise(g.words[r.IntN(len(g.words))])
		}
		g.artists[i] = strings.Join(parts, " ")
	}
	// Tags: a few thousand, from one word ("rock") to short phrases.
	g.tags = make([]string, 8000)
	for i := range g.tags {
		k := 1
		if r.IntN(3) == 0 {
			k += 1 + r.IntN(4)
		}
		parts := make([]string, k)
		for j := range parts {
			parts[j] = g.words[r.IntN(2000)]
		}
		t := strings.Join(parts, " ")
		if r.IntN(4) == 0 {
			t = capitalise(t)
		}
		g.tags[i] = t
	}
	g.wordZ = rand.NewZipf(r, 1.1, 8, uint64(len(g.words)-1))
	g.artZ = rand.NewZipf(r, 1.05, 4, uint64(len(g.artists)-1))
	g.tagZ = rand.NewZipf(r, 1.05, 5, uint64(len(g.tags)-1))
	dbID := make([]byte, 16)
	for i := range dbID {
		dbID[i] = byte(r.Uint32())
	}
	g.dbTag = b64(dbID)
	g.t0 = time.Date(2011, 8, 1, 0, 0, 0, 0, time.UTC)
	g.modT = time.Date(2019, 1, 4, 7, 46, 44, 0, time.UTC)
	return g
}

func b64(b []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var sb strings.Builder
	var acc, bits uint
	for _, c := range b {
		acc = acc<<8 | uint(c)
		bits += 8
		for bits >= 6 {
			bits -= 6
			sb.WriteByte(enc[(acc>>bits)&63])
		}
	}
	if bits > 0 {
		sb.WriteByte(enc[(acc<<(6-bits))&63])
	}
	return sb.String()
}

const trackChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// appendTS appends a .NET-style timestamp with 7 fractional digits.
func appendTS(buf []byte, t time.Time) []byte {
	buf = t.AppendFormat(buf, "2006-01-02T15:04:05")
	buf = append(buf, '.')
	frac := strconv.Itoa(t.Nanosecond() / 100)
	for k := len(frac); k < 7; k++ {
		buf = append(buf, '0')
	}
	return append(buf, frac...)
}

// doc appends document i (its @id is lastfm/i). Bodies average ~1 KB.
func (g *gen) doc(buf []byte, i int) []byte {
	r := g.r
	buf = append(buf, `{"Artist":`...)
	buf = strconv.AppendQuote(buf, g.artists[g.artZ.Uint64()])
	buf = append(buf, `,"TrackId":"TRA`...)
	for k := 0; k < 15; k++ {
		buf = append(buf, trackChars[r.IntN(len(trackChars))])
	}
	buf = append(buf, `","Title":`...)
	nt := 1 + r.IntN(5)
	title := make([]byte, 0, 64)
	for k := 0; k < nt; k++ {
		if k > 0 {
			title = append(title, ' ')
		}
		title = append(title, capitalise(g.words[g.wordZ.Uint64()])...)
	}
	if r.IntN(8) == 0 {
		title = append(title, " (Remix)"...)
	}
	buf = strconv.AppendQuote(buf, string(title))
	buf = append(buf, `,"TimeStamp":"`...)
	buf = appendTS(buf, g.t0.Add(time.Duration(r.Int64N(int64(60*24*time.Hour)))).Truncate(100*time.Nanosecond))
	buf = append(buf, `","Tags":[`...)
	// Tag count: mostly 24-73, some with none (as in the real data).
	ntags := 0
	if r.IntN(10) != 0 {
		ntags = 24 + r.IntN(50)
	}
	for k := 0; k < ntags; k++ {
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendQuote(buf, g.tags[g.tagZ.Uint64()])
	}
	buf = append(buf, `],"@metadata":{"@collection":"LastFms","Raven-Clr-Type":"DemoMethods.Entities.LastFm, DemoMethods","@id":"lastfm/`...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, `","@change-vector":"A:`...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, '-')
	buf = append(buf, g.dbTag...)
	buf = append(buf, `","@last-modified":"`...)
	buf = appendTS(buf, g.modT.Add(time.Duration(i)*400*time.Microsecond+time.Duration(r.IntN(4000))*100*time.Nanosecond))
	buf = append(buf, `"}}`...)
	return buf
}
