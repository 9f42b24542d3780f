package bench

import (
	"os/exec"
	"syscall"
)

// setParentDeath has the kernel kill the child when the bench dies, so that
// an interrupted or killed run leaves no server behind.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
