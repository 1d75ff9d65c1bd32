package testservers

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// FaultProxy is a TCP proxy on a loopback port in front of a server, for
// fault tests. It forwards faithfully until told to drop connections
// after some bytes (DropAfter) or to refuse everything (Down), and
// recovers with Up. A dropped or refused connection is reset (RST), as a
// crashed server or a middlebox would.
type FaultProxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	down      bool
	dropAfter int64 // cut a connection once this many bytes went through it
	dropsLeft int   // how many more connections to cut that way
	drops     int   // connections cut by DropAfter
	refused   int   // connections refused or cut by Down
	accepted  int
	conns     map[*proxyConn]struct{}
	wg        sync.WaitGroup
}

// NewFaultProxy starts a proxy to target (host:port) and stops it at the
// end of the test.
func NewFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot start the fault proxy: %v", err)
	}
	p := &FaultProxy{ln: ln, target: target, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr is the host:port clients should use instead of the target's.
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// DropAfter makes the proxy reset the next times connections that carry
// more than n bytes (both directions together), in the middle of the
// bytes: a network failure in the middle of a request or a response.
// Connections beyond that are forwarded again.
func (p *FaultProxy) DropAfter(n int64, times int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropAfter, p.dropsLeft = n, times
}

// Down resets every open connection and every new one until Up.
func (p *FaultProxy) Down() {
	p.mu.Lock()
	p.down = true
	var open []*proxyConn
	for c := range p.conns {
		open = append(open, c)
	}
	p.refused += len(open)
	p.mu.Unlock()
	for _, c := range open {
		c.reset()
	}
}

// Up forwards new connections again, and cancels a pending DropAfter.
func (p *FaultProxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
	p.dropsLeft = 0
}

// Drops is how many connections DropAfter cut so far.
func (p *FaultProxy) Drops() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drops
}

// Refused is how many connections Down refused or cut so far.
func (p *FaultProxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Accepted is how many connections clients opened to the proxy so far.
func (p *FaultProxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *FaultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	var open []*proxyConn
	for c := range p.conns {
		open = append(open, c)
	}
	p.mu.Unlock()
	for _, c := range open {
		c.reset()
	}
	p.wg.Wait()
}

func (p *FaultProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		p.accepted++
		down := p.down
		if down {
			p.refused++
		}
		p.mu.Unlock()
		if down {
			resetConn(client)
			continue
		}
		p.wg.Add(1)
		go p.forward(client)
	}
}

// proxyConn is one client connection and its connection to the target.
type proxyConn struct {
	client, server net.Conn
	once           sync.Once
}

func (c *proxyConn) reset() {
	c.once.Do(func() {
		resetConn(c.client)
		resetConn(c.server)
	})
}

// resetConn closes c with an RST rather than a FIN, so that the peer sees
// "connection reset" at once instead of a clean end of stream.
func resetConn(c net.Conn) {
	if c == nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *FaultProxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		resetConn(client)
		return
	}
	c := &proxyConn{client: client, server: server}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	down := p.down
	p.mu.Unlock()
	if down { // went down while this one was being set up
		c.reset()
	}
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()

	var total int64 // bytes through this connection, both ways
	var totalMu sync.Mutex
	// allow says how many of n bytes may pass before the connection must
	// be cut (n when it need not be).
	allow := func(n int) (int, bool) {
		totalMu.Lock()
		defer totalMu.Unlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.dropsLeft > 0 && total+int64(n) > p.dropAfter {
			ok := int(max(p.dropAfter-total, 0))
			p.dropsLeft--
			p.drops++
			total += int64(ok)
			return ok, true
		}
		total += int64(n)
		return n, false
	}
	pipe := func(dst, src net.Conn, done chan<- struct{}) {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				ok, cut := allow(n)
				if _, werr := dst.Write(buf[:ok]); werr != nil {
					c.reset()
					return
				}
				if cut {
					c.reset()
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					// Half-close so that the other side sees the end too.
					if tc, ok := dst.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
						return
					}
				}
				c.reset()
				return
			}
		}
	}
	up, downDone := make(chan struct{}), make(chan struct{})
	go pipe(server, client, up)
	go pipe(client, server, downDone)
	<-up
	<-downDone
	client.Close()
	server.Close()
}
