// LAB ONLY (dgx_spark.cluster). A pause process of our own for the lab's local pause image, because no
// image registry can be reached here. Like the upstream pause container it holds a pod sandbox's
// namespaces: it blocks until SIGINT or SIGTERM and then exits 0, and, when it is PID 1 of a shared
// PID namespace, reaps the zombies reparented to it. Built statically by lab/build-kubernetes.sh.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "1.0"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("pause (dgx_spark.cluster lab) " + version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s == syscall.SIGCHLD {
			reap()
			continue
		}
		os.Exit(0)
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
