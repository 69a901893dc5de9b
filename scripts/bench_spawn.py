"""Tiny launcher that starts and times the benchmarked tools for scripts/bench.

Why a separate process: on Linux a child's ru_maxrss (as returned by wait4) is at least the
peak RSS of the process that forked it (exec records the old address space's high-water mark),
so spawning the tools from the benchmark driver would put a floor of the driver's own RSS under
every measurement. This launcher stays small (run as `python3 -S -I`), so the floor is ~10 MiB
and is measured with /bin/true and reported.

Protocol: one JSON request per stdin line: {"argv": [...], "cwd": str, "stdout": path, "stderr": path}
Replies, one JSON line each on stdout: {"event": "started", "pid": N}, then
{"event": "done", "wall_s", "user_s", "sys_s", "maxrss_kib", "wait_status"}.
The child runs in its own session (so its process group id == pid) and gets SIGKILL if this
launcher dies; the launcher itself gets SIGKILL if the driver dies. EOF on stdin ends it.
"""
import ctypes
import json
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run(req):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        try:
            die_with_parent()
            os.setsid()
            os.chdir(req["cwd"])
            fd_in = os.open(os.devnull, os.O_RDONLY)
            fd_out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fd_err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd_in, 0)
            os.dup2(fd_out, 1)
            os.dup2(fd_err, 2)
            os.execvp(req["argv"][0], req["argv"])
        except BaseException as exc:  # noqa: BLE001 - report and leave the child
            try:
                os.write(2, f"bench_spawn: cannot run {req['argv'][0]}: {exc}\n".encode())
            finally:
                os._exit(127)
    reply({"event": "started", "pid": pid})
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    reply({"event": "done", "wall_s": round(wall, 4), "user_s": round(ru.ru_utime, 3),
           "sys_s": round(ru.ru_stime, 3), "maxrss_kib": ru.ru_maxrss, "wait_status": status})


def main():
    die_with_parent()
    for line in sys.stdin:
        if line.strip():
            run(json.loads(line))


if __name__ == "__main__":
    main()
