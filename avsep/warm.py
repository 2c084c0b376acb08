"""Warm start for rule scripts: a resident process with the heavy libraries imported forks
one child per job, so a short job does not spend two seconds importing torch.

Most of the workflow's jobs are short: one video's NMF bases, one mixture's separation or
evaluation. Each ran as a fresh Python that imported torch, numpy, scipy, h5py and pandas
before doing about a second of work, and that start-up was the largest cost of the demo.

Every rule script starts with ``hand_over(snakemake)``. It connects to a *warm server* for
this interpreter (started on first use, by whichever job comes first), sends the job (the
script's path, the ``snakemake`` object, the working directory, the environment and the
standard streams) and waits. The server has already imported the libraries in
:data:`PRELOAD`; it forks, and the child runs the script exactly as Python would have,
with the client's streams, folder and environment. The child's exit status becomes the
client's, so Snakemake sees the job succeed or fail as before. What the child computes is
what a fresh process computes: the project's own modules (``avsep.*``) are never imported by
the server, so an edited module is read afresh by the next job, and no state passes from
one job to the next.

When the client dies (Snakemake cancels the job, Ctrl-C, or the whole run is SIGKILLed), the
server kills the child and whatever it started as soon as the client's connection closes;
when the server dies, its children die with it. The server exits after
:data:`IDLE_SECONDS` without jobs.

The server is not used, and the script runs in its own process as before, when:

- ``AVSEP_WARM=0`` is set (the switch, for debugging or profiling a single job);
- the job runs under SLURM (``SLURM_JOB_ID``): a server started by one allocation would run
  the next allocation's jobs inside the first one's cgroup and die with it;
- the server cannot be reached or started (a message says why).

Snakemake's ``benchmark:`` files measure the client process, so their wall time is right
but their memory and CPU columns are not the job's. The server reports the child's peak
memory and CPU time (from ``wait4``) to the client, which appends them to
``benchmarks/warm_usage.tsv`` (:data:`USAGE_FILE`), where
:func:`avsep.bench.workflow.summarize_benchmarks` reads them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["hand_over", "PRELOAD", "USAGE_FILE", "IDLE_SECONDS", "socket_path"]

#: Third-party modules the server imports before it forks. Only libraries: never ``avsep``.
#: The server must only import them, never compute with them: a child forked after torch has
#: run an operation (and started its OpenMP threads) hangs in its first parallel operation.
PRELOAD = (
    "numpy", "scipy.signal", "scipy.optimize", "scipy.ndimage", "scipy.sparse", "scipy.stats",
    "scipy.io.wavfile", "h5py", "pandas", "soundfile", "PIL.Image", "yaml", "jsonschema",
    "ffmpeg", "imageio_ffmpeg", "torch", "torch.nn", "torch.nn.functional", "torchvision",
    "torchvision.models", "torchvision.ops", "torchvision.transforms.v2", "matplotlib",
    "matplotlib.pyplot", "sklearn.linear_model", "sklearn.metrics", "sklearn.preprocessing",
    "mir_eval", "librosa", "snakemake.iocontainers",
)
#: Seconds the server waits for a job before it exits.
IDLE_SECONDS = float(os.environ.get("AVSEP_WARM_IDLE", "30"))
#: Where a client records its job's peak memory and CPU time, relative to the job's folder.
USAGE_FILE = Path("benchmarks", "warm_usage.tsv")
USAGE_COLUMNS = ("rule", "output", "s", "max_rss_mb", "cpu_time")

# Environment variables read when the preloaded libraries are imported: a server is only
# shared by clients that agree on all of them.
# Snakemake sets the *_NUM_THREADS variables to each job's threads, so jobs of 1 and of 2
# threads have a server each.
_IMPORT_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "MPLBACKEND", "PYTHONHASHSEED",
               "PYTORCH_NO_CUDA_MEMORY_CACHING", "TORCH_HOME")
_CHILD_FLAG = "AVSEP_WARM_CHILD"
_START_TIMEOUT = 120.0
_HEADER = struct.Struct("!Q")
_STATUS = struct.Struct("!iqdd")  # exit status, child pid, peak RSS (MB), CPU seconds


def _disabled_reason() -> str | None:
    if os.environ.get(_CHILD_FLAG) == "1":
        return "already in a warm child"
    if os.environ.get("AVSEP_WARM", "1").strip().lower() in ("0", "false", "no", "off"):
        return "AVSEP_WARM=0"
    if os.environ.get("SLURM_JOB_ID"):
        return "running under SLURM"
    if not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
        return "this platform has no fork or fd passing"
    return None


def _key() -> str:
    """What a server must share with its clients: the interpreter, its module search path,
    the import-time environment and this module's own code."""
    h = hashlib.sha1()
    # Not the whole sys.path: Snakemake puts a folder of each run's own on it, and one
    # server serves every run. A package installed or removed changes its folder's mtime.
    sites = [p for p in dict.fromkeys(sys.path) if p.endswith(("site-packages", "dist-packages"))]
    stamps = [f"{p}@{os.stat(p).st_mtime_ns}" for p in sites if os.path.isdir(p)]
    for part in (sys.executable, sys.prefix, *stamps, *(f"{k}={os.environ.get(k)}" for k in _IMPORT_ENV)):
        h.update(part.encode() + b"\0")
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def socket_path() -> Path:
    """The server's socket for this interpreter and environment."""
    base = os.environ.get("AVSEP_WARM_DIR") or os.path.join(tempfile.gettempdir(), f"avsep-warm-{os.getuid()}")
    return Path(base, f"{_key()}.sock")


# ----------------------------------------------------------------------------- client

def hand_over(smk) -> None:
    """Run the calling rule script in a warm child and exit with its status.

    Returns without doing anything when warm start is off (see the module's docstring) or
    when this process already is the warm child; the script then goes on as usual.
    """
    reason = _disabled_reason()
    if reason is not None:
        return
    main = sys.modules["__main__"]
    script = getattr(main, "__file__", None)
    if not script or not os.path.exists(script):
        return
    try:
        conn = _connect()
    except OSError as err:
        print(f"avsep.warm: running without the warm server ({err})", file=sys.stderr)
        return
    start = time.time()
    try:
        status, pid, rss_mb, cpu = _submit(conn, script, smk)
    except KeyboardInterrupt:
        conn.close()
        raise
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    _record_usage(smk, time.time() - start, rss_mb, cpu)
    conn.close()
    os._exit(status)


def _connect() -> socket.socket:
    path = socket_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return _dial(path)
    except OSError:
        pass
    # Start one server: the first client to take the lock starts it, the others wait for it.
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _dial(path)
        except OSError:
            pass
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        # The server is started through a process that forks it off and exits at once, so
        # that it is not in this job's process tree (Snakemake's benchmark would count its
        # memory here). It writes to `ready` once it listens; the pipe closes if it dies.
        ready, done = os.pipe()
        try:
            subprocess.run(
                [sys.executable, "-m", "avsep.warm", "serve", str(path), str(done)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, env=env, cwd="/", pass_fds=(done,), check=True, timeout=60,
            )
            os.close(done)
            done = -1
            if not select.select([ready], [], [], _START_TIMEOUT)[0]:
                raise OSError(f"the warm server did not start within {_START_TIMEOUT:.0f} s")
            if os.read(ready, 1) != b"1":
                raise OSError("the warm server failed to start")
        except subprocess.SubprocessError as err:
            raise OSError(f"the warm server could not be started ({err})") from None
        finally:
            os.close(ready)
            if done >= 0:
                os.close(done)
        return _dial(path)


def _dial(path: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        raise
    return conn


def _submit(conn: socket.socket, script: str, smk) -> tuple[int, int, float, float]:
    payload = pickle.dumps({
        "script": os.path.abspath(script),
        "snakemake": smk,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "path": list(sys.path),
        "argv": list(sys.argv),
    })
    socket.send_fds(conn, [_HEADER.pack(len(payload))], [0, 1, 2])
    conn.sendall(payload)
    reply = _recv_exact(conn, _STATUS.size)
    if reply is None:
        print("avsep.warm: the warm server went away during the job", file=sys.stderr)
        return 1, 0, float("nan"), float("nan")
    return _STATUS.unpack(reply)


def _record_usage(smk, seconds: float, rss_mb: float, cpu: float) -> None:
    try:
        out = ";".join(str(o) for o in smk.output) or ";".join(str(o) for o in smk.log)
        path = Path(USAGE_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        row = "\t".join([str(smk.rule), out, f"{seconds:.4f}", f"{rss_mb:.2f}", f"{cpu:.2f}"]) + "\n"
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # concurrent jobs append whole rows, one header
            f.write(("\t".join(USAGE_COLUMNS) + "\n" if os.fstat(f.fileno()).st_size == 0 else "") + row)
    except OSError:
        pass


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


# ----------------------------------------------------------------------------- server

def serve(path: str, idle: float = IDLE_SECONDS, ready_fd: int | None = None) -> None:
    """Import :data:`PRELOAD`, listen on ``path`` and fork a child per job until idle.

    ``ready_fd``: a pipe written to once the socket listens, then closed."""
    import importlib

    os.environ.setdefault("MPLBACKEND", "Agg")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # leave no socket behind
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # a missing optional library is imported by the job if it needs it
            pass
    for name in [m for m in sys.modules if m == "avsep" or m.startswith("avsep.")]:
        del sys.modules[name]  # the server's own code is not what the jobs run
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    children: dict[int, socket.socket] = {}
    killed: set[int] = set()
    last = time.monotonic()
    try:
        while True:
            # A job's connection only becomes readable when its client is gone (it sends
            # nothing after the job): the server then kills the job at once. (Not the child
            # itself: a job inside a long C call, an NMF update or an HDF5 write, holds the
            # GIL for seconds, and no thread of its own could act.)
            watched = {conn: pid for pid, conn in children.items() if pid not in killed}
            ready, _, _ = select.select([listener, *watched], [], [], 0.05)
            for conn in ready:
                if conn is not listener and _client_gone(conn):
                    _kill_job(watched[conn])
                    killed.add(watched[conn])
            if listener in ready:
                conn, _ = listener.accept()
                pid = _start_job(conn, listener, children.values())
                if pid:
                    children[pid] = conn
                else:
                    conn.close()
            for pid in list(children):
                done, status, usage = os.wait4(pid, os.WNOHANG)
                if done:
                    code = os.waitstatus_to_exitcode(status)
                    code = code if code >= 0 else 128 - code  # killed by a signal: as a shell says
                    conn = children.pop(pid)
                    killed.discard(pid)
                    try:
                        conn.sendall(_STATUS.pack(code, pid, usage.ru_maxrss / 1024.0,
                                                  usage.ru_utime + usage.ru_stime))
                    except OSError:
                        pass
                    conn.close()
            if children or ready:
                last = time.monotonic()
            elif time.monotonic() - last > idle:
                break
    finally:
        try:
            if os.stat(path).st_ino == os.fstat(listener.fileno()).st_ino:
                os.unlink(path)
        except OSError:
            pass
        listener.close()


def _client_gone(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:  # nothing to read after all
        return False
    except OSError:
        return True


def _kill_job(pid: int) -> None:
    """SIGKILL a job's process group (its child and what the child started)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:  # not yet its own group leader, or already gone
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _start_job(conn: socket.socket, listener: socket.socket, others) -> int:
    try:
        conn.settimeout(30)
        msg, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        if len(msg) < _HEADER.size or len(fds) != 3:
            return 0
        (size,) = _HEADER.unpack(msg[: _HEADER.size])
        data = _recv_exact(conn, size)
        if data is None:
            return 0
        conn.settimeout(None)
    except OSError:
        return 0
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        try:
            os.setpgid(pid, pid)  # as the child does first: a kill right away hits its group
        except OSError:
            pass
        return pid
    # The child: never returns into the server's loop.
    code = 1
    try:
        listener.close()
        for other in others:  # other jobs' connections are theirs alone
            other.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        code = _run_job(conn, data)
    except SystemExit as ex:
        code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)


def _run_job(conn: socket.socket, data: bytes) -> int:
    import runpy

    conn.close()  # the server watches the client's connection (serve)
    os.setpgid(0, 0)  # the job and what it starts form one group, killed together
    _die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    job = pickle.loads(data)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    os.environ[_CHILD_FLAG] = "1"
    sys.path[:] = job["path"]
    sys.argv[:] = job["argv"]
    try:
        runpy.run_path(job["script"], init_globals={"snakemake": job["snakemake"]}, run_name="__main__")
    except SystemExit as ex:
        if ex.code is None:
            return 0
        if isinstance(ex.code, int):
            return ex.code
        print(ex.code, file=sys.stderr)
        return 1
    return 0


def _die_with_parent() -> None:
    """Linux: the child is killed if the server dies, rather than run on unwatched."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "serve":
        sys.exit("usage: python -m avsep.warm serve SOCKET READY_FD")
    if os.fork():
        os._exit(0)
    serve(args[1], ready_fd=int(args[2]))


if __name__ == "__main__":
    main()
