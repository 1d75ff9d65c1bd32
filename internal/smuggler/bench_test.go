package smuggler

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// genDump builds an export of n documents shaped like the sample's LastFms
// documents (about 500 bytes each, strings and a tag array), with a raw
// control character in every 1000th title and some non-ASCII text.
func genDump(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"rock", "indie", "alternative", "jazz", "Muse", "seen live", "électronique", "hip hop", "Progressive metal", "relaxing", "british", "UK", "acoustic", "金属"}
	pick := func() string { return words[rng.IntN(len(words))] }
	var b bytes.Buffer
	b.WriteString(`{"BuildVersion":41004,"Docs":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		title := pick() + " " + pick()
		if i%1000 == 999 {
			title = "I\x19m " + title
		}
		fmt.Fprintf(&b, `{"Artist":"%s %s","TrackId":"TR%016X","Title":"%s","TimeStamp":"2011-08-%02dT12:07:02.4430560","Tags":[`,
			pick(), pick(), rng.Uint64(), title, 1+rng.IntN(28))
		for j := range rng.IntN(12) {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%s"`, pick())
		}
		fmt.Fprintf(&b, `],"Plays":%d,"Rating":%.2f,"@metadata":{"@collection":"LastFms","Raven-Clr-Type":"DemoMethods.Entities.LastFm, DemoMethods","@id":"lastfm/%d","@change-vector":"A:%d-DkcU1r0EXk+GJaufrc1agg","@last-modified":"2019-01-04T07:46:44.5002849"}}`,
			rng.IntN(100000), rng.Float64()*5, i+1, i+1)
	}
	b.WriteString(`],"Indexes":[{"Type":"Map","IndexDefinition":{"Name":"LastFmAnalyzed","Maps":["from song in docs.LastFms select new { song.Title }"]}}]}`)
	return b.Bytes()
}

// countHandler counts items and touches each body, like a cheap consumer.
type countHandler struct{ docs, bytes int }

func (h *countHandler) BuildVersion(int64) error { return nil }
func (h *countHandler) Document(d *Document) error {
	h.docs++
	h.bytes += len(d.Body)
	return nil
}
func (h *countHandler) Attachment(a *Attachment) error { return nil }
func (h *countHandler) Tombstone(*Tombstone) error     { return nil }
func (h *countHandler) Index([]byte) error             { return nil }
func (h *countHandler) Skipped(string, int) error      { return nil }

// BenchmarkRead measures the parser alone over an in-memory dump of 10,000
// documents: MB/s is decompressed bytes per second.
func BenchmarkRead(b *testing.B) {
	dump := genDump(10000)
	b.SetBytes(int64(len(dump)))
	b.ReportAllocs()
	for b.Loop() {
		var h countHandler
		if err := Read(bytes.NewReader(dump), &h); err != nil {
			b.Fatal(err)
		}
		if h.docs != 10000 {
			b.Fatalf("read %d docs", h.docs)
		}
	}
	b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkImport measures Decompress+Read over the same dump compressed
// with each codec, as an import sees it.
func BenchmarkImport(b *testing.B) {
	dump := genDump(10000)
	for _, c := range []Compression{Gzip, Zstd} {
		var buf bytes.Buffer
		w, _ := Compress(&buf, c)
		w.Write(dump)
		w.Close()
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(dump)))
			for b.Loop() {
				var h countHandler
				if err := Import(bytes.NewReader(buf.Bytes()), &h); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

// BenchmarkWrite measures the Writer re-exporting the dump's documents.
func BenchmarkWrite(b *testing.B) {
	dump := genDump(10000)
	var rec recorder
	if err := Read(bytes.NewReader(dump), &rec); err != nil {
		b.Fatal(err)
	}
	docs := rec.docs()
	b.SetBytes(int64(len(dump)))
	for b.Loop() {
		w := NewWriter(io.Discard, 41004)
		for _, d := range docs {
			if err := w.Document(d.Body); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompress compares the codec settings Compress could use; the
// chosen ones are recorded in compress.go. ratio is output/input in percent.
func BenchmarkCompress(b *testing.B) {
	dump := genDump(10000)
	for _, c := range []Compression{Gzip, Zstd} {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(dump)))
			var out countWriter
			for b.Loop() {
				out = 0
				w, _ := Compress(&out, c)
				w.Write(dump)
				w.Close()
			}
			b.ReportMetric(100*float64(out)/float64(len(dump)), "ratio%")
		})
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// BenchmarkReadSample is BenchmarkRead over the real sample export.
func BenchmarkReadSample(b *testing.B) {
	_, plain := sampleData(b)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		var h countHandler
		if err := Read(bytes.NewReader(plain), &h); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*9330/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkImportSample is Import over the real gzip sample and over the
// same payload recompressed with zstd.
func BenchmarkImportSample(b *testing.B) {
	compressed, plain := sampleData(b)
	var z bytes.Buffer
	zw, _ := Compress(&z, Zstd)
	zw.Write(plain)
	zw.Close()
	for _, in := range []struct {
		name string
		data []byte
	}{{"gzip", compressed}, {"zstd", z.Bytes()}} {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				var h countHandler
				if err := Import(bytes.NewReader(in.data), &h); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*9330/b.Elapsed().Seconds(), "docs/s")
		})
	}
}
