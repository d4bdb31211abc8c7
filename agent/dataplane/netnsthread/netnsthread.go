// Package netnsthread runs a function in another network namespace. Network namespaces belong to threads, and
// the engine works in the namespace of the thread that creates its objects: this is how a caller picks one.
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
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
