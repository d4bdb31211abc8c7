package agent

import "errors"

// errKilled stands in for SIGKILL: a run stopped with it neither reports nor removes its pins.
var errKilled = errors.New("the agent was killed")

// Kill stops every run as SIGKILL stops the agent's process: no last report, the pins left where they are.
func (a *Agent) Kill() { a.stopAll(errKilled) }
