// Package iperf3 speaks the client side of iperf3's control protocol, so that an unmodified `iperf3 -s` can
// receive a TCP test whose data streams somebody else writes (xdpgen's engine, as XDP live frames).
//
// The protocol, as iperf3 (src/iperf_api.h, iperf_api.c, iperf_client_api.c, iperf_server_api.c, iperf_tcp.c)
// runs it: the client connects the control connection and writes a cookie (36 characters and a NUL). The server
// drives the test with one signed state byte at a time on the control connection; the client answers:
//
//	PARAM_EXCHANGE  the client sends its parameters as JSON
//	CREATE_STREAMS  the client connects each data stream to the same port and writes the cookie on it first
//	TEST_START      (the server has accepted every stream)
//	TEST_RUNNING    the server counts what it reads from here; the client sends
//
// The client ends the test by writing TEST_END. The server closes the data streams and answers EXCHANGE_RESULTS:
// the client sends its results as JSON, then reads the server's. DISPLAY_RESULTS follows; the client writes
// IPERF_DONE and closes. Every JSON message is a 4-byte big-endian length and the text.
package iperf3

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"
)

// The state bytes (iperf_api.h).
const (
	testStart       = 1
	testRunning     = 2
	testEnd         = 4
	paramExchange   = 9
	createStreams   = 10
	serverTerminate = 11
	exchangeResults = 13
	displayResults  = 14
	iperfDone       = 16
	accessDenied    = -1
	serverError     = -2
)

// CookieSize is the length of the cookie that starts the control connection and every data stream: 36
// characters and a terminating NUL. The server counts none of it as received data.
const CookieSize = 37

// ReadGrace is how long End waits before telling the server the test is over. The server counts only what it
// has read when TEST_END arrives and closes the streams then; data the client saw acknowledged may still sit in
// the server's socket buffer, and without the wait the server's count would come up short.
const ReadGrace = 250 * time.Millisecond

// blockSize is the server's read size ("len"); iperf3's own default for TCP.
const blockSize = 128 << 10

// Params are what the client tells the server about the test.
type Params struct {
	// Streams is the number of data streams the client will connect.
	Streams int
	// Duration is the test's length, rounded up to whole seconds; 0: the test ends when the client says so.
	// The server uses it only for a safety timer (the duration plus 40 seconds).
	Duration time.Duration
}

// Session is a test, from the client's side of the control connection.
type Session struct {
	conn    net.Conn
	r       *bufio.Reader
	cookie  [CookieSize]byte
	streams int
}

// Start makes the control connection with dial, sends the cookie and the parameters, and returns once the
// server asks for the data streams (CREATE_STREAMS): connect them now, each sending Cookie first.
func Start(ctx context.Context, dial func(context.Context) (net.Conn, error), p Params) (*Session, error) {
	conn, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	s := &Session{conn: conn, r: bufio.NewReader(conn), streams: p.Streams}
	stop := unblockOnDone(ctx, conn)
	defer stop()
	if err := s.start(p); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func (s *Session) start(p Params) error {
	// iperf3 draws its cookie from these 32 characters; the server only compares it.
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	if _, err := rand.Read(s.cookie[:CookieSize-1]); err != nil {
		return err
	}
	for i := range CookieSize - 1 {
		s.cookie[i] = alphabet[s.cookie[i]%byte(len(alphabet))]
	}
	s.cookie[CookieSize-1] = 0
	if _, err := s.conn.Write(s.cookie[:]); err != nil {
		return fmt.Errorf("send the iperf3 cookie: %w", err)
	}
	if err := s.expect(paramExchange); err != nil {
		return err
	}
	params := map[string]any{
		"tcp":            true,
		"omit":           0,
		"time":           int(math.Ceil(p.Duration.Seconds())),
		"num":            0,
		"blockcount":     0,
		"parallel":       p.Streams,
		"len":            blockSize,
		"client_version": "xdpgen",
	}
	if err := s.writeJSON(params); err != nil {
		return fmt.Errorf("send the iperf3 parameters: %w", err)
	}
	return s.expect(createStreams)
}

// Cookie is what each data stream sends first.
func (s *Session) Cookie() []byte {
	return s.cookie[:]
}

// WaitRunning returns once the server has accepted every data stream and counts what they carry (TEST_RUNNING).
func (s *Session) WaitRunning(ctx context.Context) error {
	stop := unblockOnDone(ctx, s.conn)
	defer stop()
	if err := s.expect(testStart); err != nil {
		return err
	}
	return s.expect(testRunning)
}

// clientResults are the client's report of the test, as EXCHANGE_RESULTS carries it (send_results in
// iperf_api.c); the server insists on every field.
type clientResults struct {
	CPUUtilTotal         float64        `json:"cpu_util_total"`
	CPUUtilUser          float64        `json:"cpu_util_user"`
	CPUUtilSystem        float64        `json:"cpu_util_system"`
	SenderHasRetransmits int            `json:"sender_has_retransmits"`
	Streams              []clientStream `json:"streams"`
}

type clientStream struct {
	ID          int     `json:"id"`
	Bytes       uint64  `json:"bytes"`
	Retransmits uint64  `json:"retransmits"`
	Jitter      float64 `json:"jitter"`
	Errors      int     `json:"errors"`
	Packets     uint64  `json:"packets"`
	StartTime   float64 `json:"start_time"`
	EndTime     float64 `json:"end_time"`
}

// Received is the server's count of one data stream, in stream order (the order the streams were connected:
// the order the server accepted them).
type Received struct {
	// ID is the server's number for the stream.
	ID int `json:"id"`
	// Bytes is what the server read from the stream while the test ran, after its cookie.
	Bytes uint64 `json:"bytes"`
}

// serverResults is the part of the server's report xdpgen reads. (Its other numbers include -1 printed as an
// unsigned 64-bit integer, which is better left unparsed.)
type serverResults struct {
	Streams []Received `json:"streams"`
}

// Sent is one data stream's count from the client: acknowledged bytes after the cookie, segments, retransmitted
// segments.
type Sent struct {
	Bytes, Segments, Retransmits uint64
}

// End waits ReadGrace, ends the test (TEST_END), exchanges results (sent is the client's, in stream order, over
// elapsed) and says goodbye (IPERF_DONE). It returns the server's count of each stream and closes the control
// connection.
func (s *Session) End(ctx context.Context, sent []Sent, elapsed time.Duration) ([]Received, error) {
	defer s.conn.Close()
	stop := unblockOnDone(ctx, s.conn)
	defer stop()
	select {
	case <-time.After(ReadGrace):
	case <-ctx.Done():
	}
	var server serverResults
	if _, err := s.conn.Write([]byte{testEnd}); err != nil {
		return nil, fmt.Errorf("end the iperf3 test: %w", err)
	}
	if err := s.expect(exchangeResults); err != nil {
		return nil, err
	}
	ours := clientResults{SenderHasRetransmits: 1, Streams: make([]clientStream, len(sent))}
	for i, st := range sent {
		ours.Streams[i] = clientStream{
			ID: streamID(i), Bytes: st.Bytes, Retransmits: st.Retransmits, Packets: st.Segments,
			EndTime: elapsed.Seconds(),
		}
	}
	if err := s.writeJSON(ours); err != nil {
		return nil, fmt.Errorf("send the iperf3 results: %w", err)
	}
	if err := s.readJSON(&server); err != nil {
		return nil, fmt.Errorf("read the iperf3 server's results: %w", err)
	}
	if len(server.Streams) != s.streams {
		return nil, fmt.Errorf("the iperf3 server reported %d streams, the test had %d", len(server.Streams), s.streams)
	}
	if err := s.expect(displayResults); err != nil {
		return nil, err
	}
	if _, err := s.conn.Write([]byte{iperfDone}); err != nil {
		return nil, fmt.Errorf("finish the iperf3 test: %w", err)
	}
	return server.Streams, nil
}

// Close drops the control connection; the server abandons the test.
func (s *Session) Close() error {
	return s.conn.Close()
}

// streamID is the server's number for the i-th stream it accepted: 1, then 3, 4, ... (iperf_add_stream skips 2,
// and keeps doing so for compatibility).
func streamID(i int) int {
	if i == 0 {
		return 1
	}
	return i + 2
}

// expect reads the next state byte and fails unless it is want, saying what the server meant instead.
func (s *Session) expect(want int8) error {
	b, err := s.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the iperf3 server closed the control connection (waiting for state %d)", want)
		}
		return fmt.Errorf("read the iperf3 server's state: %w", err)
	}
	switch got := int8(b); got {
	case want:
		return nil
	case accessDenied:
		return errors.New("the iperf3 server is busy with another test (access denied)")
	case serverTerminate:
		return errors.New("the iperf3 server terminated the test")
	case serverError:
		var codes [2]int32
		if err := binary.Read(s.r, binary.BigEndian, &codes); err != nil {
			return fmt.Errorf("the iperf3 server reported an error: %w", err)
		}
		return fmt.Errorf("the iperf3 server reported error %d (errno %d): see its output", codes[0], codes[1])
	default:
		return fmt.Errorf("the iperf3 server sent state %d, want %d", got, want)
	}
}

func (s *Session) writeJSON(v any) error {
	text, err := json.Marshal(v)
	if err != nil {
		return err
	}
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(text)))
	_, err = s.conn.Write(append(msg, text...))
	return err
}

func (s *Session) readJSON(v any) error {
	var n uint32
	if err := binary.Read(s.r, binary.BigEndian, &n); err != nil {
		return err
	}
	text := make([]byte, n)
	if _, err := io.ReadFull(s.r, text); err != nil {
		return err
	}
	return json.Unmarshal(text, v)
}

// unblockOnDone makes conn's pending and future reads and writes fail once ctx is done, so that a cancelled test
// never hangs on a silent server; the returned stop undoes that.
func unblockOnDone(ctx context.Context, conn net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
}
