// Package testenv gives tests the outside servers the scale-out backends
// run on (PostgreSQL, and versitygw as the S3 server), started once per test
// process and stopped when it ends, or taken from the environment. A test
// whose server cannot be had fails under CI=true and is skipped elsewhere,
// naming what to install.
//
// A package using these helpers runs its tests through Main (or Run) from
// TestMain, so that a server it started is stopped before the process
// exits.
package testenv

import (
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

var (
	mainRan  atomic.Bool
	atExitMu sync.Mutex
	atExit   []func()
)

// Main runs the tests of m, stops every server they started, and exits
// with their status. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain with work of its own to do after the tests:
// it returns their status instead of exiting.
func Run(m *testing.M) int {
	mainRan.Store(true)
	code := m.Run()
	atExitMu.Lock()
	fns := atExit
	atExit = nil
	atExitMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	return code
}

// requireMain fails the test unless it runs under Main: a server started
// for it would otherwise outlive the test process.
func requireMain(t testing.TB) {
	t.Helper()
	if !mainRan.Load() {
		t.Fatal("testenv starts servers only for tests run by testenv.Main or Run: call it from TestMain")
	}
}

// onExit has Main run fn once the tests are done.
func onExit(fn func()) {
	atExitMu.Lock()
	atExit = append(atExit, fn)
	atExitMu.Unlock()
}

// missing fails the test under CI=true, where every tool must be
// installed, and skips it elsewhere, with why.
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
