package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server is an Emulator listening on a loopback port, for tests: like
// httptest.Server, it is started by NewServer and stopped by Close. Its methods
// (Batches, Stats, Reset, SetFaults...) are the Emulator's.
type Server struct {
	*Emulator
	// URL is the Events API base URL, e.g. "http://127.0.0.1:41234/v2"; append
	// "/events" or "/bulkevents" as with mParticle's own base URL.
	URL string
	// Addr is the listening address, e.g. "127.0.0.1:41234".
	Addr string

	srv  *http.Server
	done chan struct{}
}

// NewServer starts an Emulator for cfg on 127.0.0.1 at a free port. Like
// httptest.NewServer it panics when it cannot (an invalid cfg, no free port),
// as there is nothing a test could do but fail.
func NewServer(cfg Config) *Server {
	s, err := Start("127.0.0.1:0", cfg)
	if err != nil {
		panic(fmt.Sprintf("emulator: %v", err))
	}
	return s
}

// Start starts an Emulator for cfg listening on addr (host:port; port 0 picks a
// free one) and returns once it accepts connections.
func Start(addr string, cfg Config) (*Server, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Server{
		Emulator: e,
		Addr:     ln.Addr().String(),
		URL:      "http://" + ln.Addr().String() + "/v2",
		srv:      &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second},
		done:     make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && e.logger != nil {
			e.logger.Error("serve", "error", err)
		}
	}()
	return s, nil
}

// Close stops the server at once, closing open connections, and waits for it to
// stop accepting. Recorded batches stay readable.
func (s *Server) Close() {
	_ = s.srv.Close()
	<-s.done
}

// Shutdown stops the server gracefully: it stops accepting, waits for requests in
// flight to finish or ctx to end, then returns.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}
