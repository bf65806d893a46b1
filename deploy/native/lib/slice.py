#!/usr/bin/env python3
"""Run a command with a shorter scheduler slice: `slice.py MICROSECONDS COMMAND [ARG ...]`.

Why: on Linux 6.12 and later (EEVDF) a SCHED_OTHER task may ask for its own slice
(`sched_attr.sched_runtime`, 100 us to 100 ms). A shorter slice gives it an earlier virtual
deadline, so when it wakes up it runs before tasks with the default slice (and may preempt
them) instead of waiting for their slice to end. Children inherit it across fork and exec, so
wrapping a service's command covers its workers and backends. The native stack uses it for
STACK_SLICE_US (lib/config.sh): how much of the tail at the official rate is a wake-up waiting
behind the loader's threads on the same cores. The nice value is kept; only the slice changes.
"""

import ctypes
import os
import platform
import struct
import sys

# sched_setattr(2) and sched_getattr(2)'s syscall numbers per machine (x86_64, aarch64).
SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
SYS_SCHED_GETATTR = {"x86_64": 315, "aarch64": 275}
# struct sched_attr (v1, 56 bytes): size, policy (0: SCHED_OTHER), flags, nice, priority,
# runtime (a SCHED_OTHER task's slice, in ns), deadline, period, util_min, util_max.
ATTR = "IIQiIQQQII"
SIZE = struct.calcsize(ATTR)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: slice.py MICROSECONDS COMMAND [ARG ...]")
    us = int(sys.argv[1]) if sys.argv[1].isdigit() else 0
    if not 100 <= us <= 100_000:
        sys.exit("slice.py: the slice is 100 to 100000 microseconds (the kernel's bounds)")
    slice_ns = us * 1000
    machine = platform.machine()
    if machine not in SYS_SCHED_SETATTR:
        sys.exit(f"slice.py: sched_setattr's number is unknown on {machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    attr = struct.pack(ATTR, SIZE, 0, 0, nice, 0, slice_ns, 0, 0, 0, 0)
    if libc.syscall(SYS_SCHED_SETATTR[machine], 0, ctypes.create_string_buffer(attr), 0) != 0:
        err = ctypes.get_errno()
        sys.exit(f"slice.py: sched_setattr({slice_ns} ns): {os.strerror(err)}")
    # Kernels before 6.12 accept the call and ignore the slice: read it back.
    if current_slice_ns(libc, machine) != slice_ns:
        sys.exit(f"slice.py: this kernel ({platform.release()}) ignores a task's own slice (needs Linux 6.12+)")
    os.execvp(sys.argv[2], sys.argv[2:])


def current_slice_ns(libc: ctypes.CDLL, machine: str) -> int:
    """The calling thread's slice as sched_getattr(2) reports it (0 where it does not)."""
    buf = ctypes.create_string_buffer(SIZE)
    if libc.syscall(SYS_SCHED_GETATTR[machine], 0, buf, SIZE, 0) != 0:
        return 0
    return struct.unpack(ATTR, buf.raw)[5]


if __name__ == "__main__":
    main()
