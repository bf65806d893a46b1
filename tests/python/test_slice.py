"""deploy/native/lib/slice.py, the native stack's STACK_SLICE_US: a command (and what it
forks) runs with the scheduler slice asked for, on kernels that honour a task's own slice
(Linux 6.12+); elsewhere, and for a slice outside the kernel's bounds, it refuses and runs
nothing, rather than measuring a slice that is not there."""

import os
import platform
import subprocess
import sys
import unittest

SLICE = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "native", "lib", "slice.py")

# The child reports its own slice and its child's, as the kernel shows them in
# /proc/PID/sched (independently of the sched_getattr(2) that slice.py reads back).
REPORT = """
import os
def slice_ns():
    with open("/proc/self/sched") as f:
        return next(line.split(":")[1].strip() for line in f if line.startswith("se.slice"))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, slice_ns().encode()); os._exit(0)
os.waitpid(pid, 0)
print(slice_ns(), os.read(r, 32).decode())
"""


def honours_own_slice() -> bool:
    major, minor = (int(x) for x in platform.release().split(".")[:2])
    return (major, minor) >= (6, 12)


class SliceTest(unittest.TestCase):
    def run_slice(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, SLICE, *args], capture_output=True, text=True, timeout=30)

    def test_the_command_and_its_children_get_the_slice_or_nothing_runs(self) -> None:
        out = self.run_slice("250", sys.executable, "-c", REPORT)
        if honours_own_slice():
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.split(), ["250000", "250000"])
        else:
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("6.12", out.stderr)
            self.assertEqual(out.stdout, "")

    def test_a_slice_outside_the_kernels_bounds_is_refused(self) -> None:
        for bad in ("99", "100001", "x", "-5"):
            out = self.run_slice(bad, "echo", "ran")
            self.assertNotEqual(out.returncode, 0, bad)
            self.assertIn("100 to 100000", out.stderr)
            self.assertEqual(out.stdout, "")


if __name__ == "__main__":
    unittest.main()
