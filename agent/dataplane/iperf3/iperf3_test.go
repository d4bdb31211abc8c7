package iperf3

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeServer is the server's side of the control connection, driven step by step by a test.
type fakeServer struct {
	t    *testing.T
	conn net.Conn
}

func (f *fakeServer) send(b ...byte) {
	if _, err := f.conn.Write(b); err != nil {
		f.t.Error(err)
	}
}

func (f *fakeServer) read(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(f.conn, b); err != nil {
		f.t.Error(err)
	}
	return b
}

func (f *fakeServer) readJSON(v any) {
	n := binary.BigEndian.Uint32(f.read(4))
	if err := json.Unmarshal(f.read(int(n)), v); err != nil {
		f.t.Error(err)
	}
}

func (f *fakeServer) sendJSON(text string) {
	f.send(append(binary.BigEndian.AppendUint32(nil, uint32(len(text))), text...)...)
}

// session starts a Session against a fake server that serve drives, on a pipe.
func session(t *testing.T, streams int, serve func(f *fakeServer)) (*Session, chan struct{}, error) {
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(&fakeServer{t: t, conn: server})
	}()
	s, err := Start(context.Background(), func(context.Context) (net.Conn, error) { return client, nil }, Params{Streams: streams, Duration: 1500 * time.Millisecond})
	return s, done, err
}

// TestSessionRunsATest walks a whole test as iperf3 -s runs it: the cookie, the parameters, the stream
// numbering in the results (1, 3), and the server's results with its unsigned -1.
func TestSessionRunsATest(t *testing.T) {
	s, done, err := session(t, 2, func(f *fakeServer) {
		cookie := f.read(CookieSize)
		if cookie[CookieSize-1] != 0 || bytes.IndexByte(cookie[:CookieSize-1], 0) >= 0 {
			t.Errorf("cookie %q: want 36 characters and a NUL", cookie)
		}
		f.send(paramExchange)
		var params map[string]any
		f.readJSON(&params)
		if params["tcp"] != true || params["parallel"] != 2.0 || params["time"] != 2.0 || params["omit"] != 0.0 {
			t.Errorf("parameters %v", params)
		}
		f.send(createStreams)
		f.send(testStart, testRunning)
		if end := f.read(1); end[0] != testEnd {
			t.Errorf("state %d, want TEST_END", end[0])
		}
		f.send(exchangeResults)
		var ours clientResults
		f.readJSON(&ours)
		if len(ours.Streams) != 2 || ours.Streams[0].ID != 1 || ours.Streams[1].ID != 3 || ours.Streams[1].Bytes != 2000 {
			t.Errorf("client results %+v", ours)
		}
		f.sendJSON(`{"cpu_util_total":1,"cpu_util_user":0.5,"cpu_util_system":0.5,"sender_has_retransmits":18446744073709551615,` +
			`"streams":[{"id":1,"bytes":1000,"retransmits":18446744073709551615,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":1.5},` +
			`{"id":3,"bytes":2000,"retransmits":18446744073709551615,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":1.5}]}`)
		f.send(displayResults)
		if bye := f.read(1); bye[0] != iperfDone {
			t.Errorf("state %d, want IPERF_DONE", bye[0])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitRunning(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := s.End(context.Background(), []Sent{{Bytes: 1000}, {Bytes: 2000}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (Received{ID: 1, Bytes: 1000}) || got[1] != (Received{ID: 3, Bytes: 2000}) {
		t.Fatalf("server's counts %+v", got)
	}
	<-done
}

// TestSessionSaysWhyTheServerRefused: a busy server denies access; an error state carries its codes.
func TestSessionSaysWhyTheServerRefused(t *testing.T) {
	for _, c := range []struct {
		reply []byte
		want  string
	}{
		{[]byte{0xff}, "busy with another test"},
		{[]byte{0xfe, 0, 0, 0, 118, 0, 0, 0, 98}, "reported error 118 (errno 98)"},
		{[]byte{createStreams}, "sent state 10, want 9"},
	} {
		_, done, err := session(t, 1, func(f *fakeServer) {
			f.read(CookieSize)
			f.send(c.reply...)
		})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("reply %v: error %v, want one that says %q", c.reply, err, c.want)
		}
		<-done
	}
}
