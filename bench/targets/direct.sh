# Target: nothing in the middle; the caller reaches the callee itself. The
# harness's own ceiling on this machine.
target_start() { DIRECT=1; }
target_stop() { :; }
target_pids() { :; }
