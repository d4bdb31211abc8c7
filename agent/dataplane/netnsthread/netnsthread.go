// Package netnsthread runs code in a given network namespace. Network namespaces belong to threads, and the
// engine works in the namespace of the thread that creates its objects: this is how a caller picks one.
package netnsthread

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on a thread that is in ns, and waits for it. The thread is thrown away afterwards, so nothing fn
// does to it (namespace, affinity) leaks into the rest of the program.
func Do(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := Enter(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Enter moves the calling thread, which must be locked to its goroutine, into ns. A thread already there stays
// put: setns(2) needs CAP_SYS_ADMIN, which an agent running in its host's namespace neither has nor needs.
func Enter(ns netns.NsHandle) error {
	cur, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current network namespace: %w", err)
	}
	defer cur.Close()
	if cur.Equal(ns) {
		return nil
	}
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("enter network namespace: %w", err)
	}
	return nil
}
