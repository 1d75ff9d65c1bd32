package testservers

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every connection with what it reads.
func echoServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrip sends n bytes through addr and returns how many came back.
func roundTrip(t *testing.T, addr string, n int) (int, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	data := bytes.Repeat([]byte("x"), n)
	go c.Write(data)
	got, err := io.ReadFull(c, make([]byte, n))
	return got, err
}

func TestFaultProxy(t *testing.T) {
	p := NewFaultProxy(t, echoServer(t))

	if got, err := roundTrip(t, p.Addr(), 100000); err != nil || got != 100000 {
		t.Fatalf("forwarding: %d bytes, %v", got, err)
	}

	// 10,000 bytes through the connection both ways together: the
	// client gets some echo back, then a reset, never all of it. (How
	// much comes back before the reset depends on the kernel's buffers;
	// what matters is the error before the end.)
	p.DropAfter(10000, 1)
	got, err := roundTrip(t, p.Addr(), 100000)
	if err == nil || got >= 100000 {
		t.Fatalf("with DropAfter: %d bytes back, %v; want fewer than 100000 and an error", got, err)
	}
	if p.Drops() != 1 {
		t.Fatalf("Drops = %d, want 1", p.Drops())
	}
	if got, err := roundTrip(t, p.Addr(), 100000); err != nil || got != 100000 {
		t.Fatalf("after the drop: %d bytes, %v", got, err)
	}

	p.Down()
	if got, err := roundTrip(t, p.Addr(), 1000); err == nil {
		t.Fatalf("while down: %d bytes came back", got)
	}
	if p.Refused() == 0 {
		t.Fatalf("Refused = 0 while down")
	}
	p.Up()
	if got, err := roundTrip(t, p.Addr(), 1000); err != nil || got != 1000 {
		t.Fatalf("after Up: %d bytes, %v", got, err)
	}
	if p.Accepted() != 5 {
		t.Errorf("Accepted = %d, want 5", p.Accepted())
	}
}
