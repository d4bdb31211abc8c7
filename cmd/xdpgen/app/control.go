package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/xdpgen/xdpgen/agent/dataplane"
)

// The control channel lets a sender on another host read what `xdpgen receive` accounted, so that it can settle
// each trial of a search itself: plain HTTP with JSON bodies, two requests.
//
//	GET    /v1/paths?generator=N   {"paths": [rxPath, ...]}: the stamped paths of generator N (all without N)
//	DELETE /v1/generators/N        forget generator N's streams (once its trial is settled)
//
// It carries counts only, never a command that sends: the worst a stranger who reaches it can do is read the
// counts or make the receiver forget a generator. Listen on the test network's address, not on every interface.
const (
	controlPathsPath      = "/v1/paths"
	controlGeneratorsPath = "/v1/generators/"
)

// controlPaths is the answer to GET /v1/paths.
type controlPaths struct {
	Paths []rxPath `json:"paths"`
}

// serveControl serves rx's counts on addr until ctx ends; the listener is open when it returns.
func serveControl(ctx context.Context, addr string, rx *dataplane.Receiver) (net.Addr, <-chan error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, &flagError{"--control", addr, fmt.Sprintf("cannot listen there (%v): give a free ADDRESS:PORT or :PORT", err)}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+controlPathsPath, func(w http.ResponseWriter, r *http.Request) {
		streams, err := rx.Streams()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		paths := rxPaths(streams)
		if g := r.URL.Query().Get("generator"); g != "" {
			id, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				http.Error(w, "generator: not a generator id (0 to 4294967295)", http.StatusBadRequest)
				return
			}
			kept := paths[:0]
			for _, p := range paths {
				if p.Generator == uint32(id) {
					kept = append(kept, p)
				}
			}
			paths = kept
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(controlPaths{Paths: paths})
	})
	mux.HandleFunc("DELETE "+controlGeneratorsPath+"{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
		if err != nil {
			http.Error(w, "not a generator id (0 to 4294967295)", http.StatusBadRequest)
			return
		}
		if err := rx.Forget(uint32(id)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	return l.Addr(), done, nil
}

// controlClient reads a remote receiver's counts through its control channel.
type controlClient struct {
	base   string
	client *http.Client
}

func newControlClient(addr netip.AddrPort) *controlClient {
	return &controlClient{base: "http://" + addr.String(), client: &http.Client{Timeout: 5 * time.Second}}
}

// received is how many distinct frames of generator from sender to dst the receiver accounted.
func (c *controlClient) received(ctx context.Context, generator, sender uint32, dst netip.Addr) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.base+controlPathsPath+"?"+url.Values{"generator": {strconv.FormatUint(uint64(generator), 10)}}.Encode(), nil)
	if err != nil {
		return 0, err
	}
	var paths controlPaths
	if err := c.do(req, &paths); err != nil {
		return 0, err
	}
	var n uint64
	for _, p := range paths.Paths {
		if p.Sender == sender && p.Dst == dst {
			n += p.Received
		}
	}
	return n, nil
}

// forget asks the receiver to drop generator's streams.
func (c *controlClient) forget(ctx context.Context, generator uint32) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.base+controlGeneratorsPath+strconv.FormatUint(uint64(generator), 10), nil)
	if err != nil {
		return err
	}
	return c.do(req, nil)
}

func (c *controlClient) do(req *http.Request, into any) error {
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("receiver's control channel: %w (is `xdpgen receive --control` running there?)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var msg [512]byte
		n, _ := resp.Body.Read(msg[:])
		return fmt.Errorf("receiver's control channel: %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, msg[:n])
	}
	if into == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("receiver's control channel: %s: %w", req.URL.Path, err)
	}
	return nil
}
