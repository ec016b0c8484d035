#!/usr/bin/env python3
"""The benchmark suite: duplex against reference servers and local baselines, in one run.

Usage: bench/suite.py [--quick] [--only W1,W2,...] [--rounds N] [--duration S]
                      [--build-dir DIR] [--no-build] [--out FILE]

Builds what it needs (the release preset, or --build-dir), installs missing Debian packages by
name (socat, openssh-server, libboost-dev for muduo), starts every server on 127.0.0.1 (port 0,
or a free port it picks) and runs each workload against each server in turn, round after round
(A B C A B C ...), so that a load change on this shared machine hits every server alike. Keeps
the median and the min-max of the rounds. Writes Markdown tables to stdout and --out (default
build/bench/results.md) and every raw sample to results.json beside it.

Workloads (--only takes these names):
  W1  1 connection x 64 B, p50 latency          W2  100 connections x 64 B, messages/s
  W3  100 connections x 16 KiB, messages/s      W4  connect storm, 16 parallel: conn/s and
  W5  10,000 idle connections: server RSS each      server CPU per accepted connection
  S   client start-up: `duplex exec unix://... -- true` beside /bin/true and `duplex --version`
  E1  exec commands/s over one connection vs a local posix_spawn+waitpid loop of `sh -c true`
  E2  the same, 8 in parallel
  E3  `duplex exec URL -- head -c 1G /dev/zero | cat` over unix:// and tcp:// vs the pipeline
  TLS the same over tls:// vs ssh -c aes128-gcm to a local sshd the suite starts
  CMD per-command latency: duplex exec (unix, tcp, tls full and resumed) vs ssh, with and
      without ControlMaster

Every server speaks the tutorial's raw protocol (bytes in, upper-cased bytes out; socat and
muduo echo and are verified as echo). Single-threaded servers run on CPU 0 and the load
generator (`duplex bench`) on CPU 1; duplex with its default threads and both sides of the exec
workloads are not pinned. Processes it starts are stopped by pid, also on Ctrl-C or an error.
"""
import argparse
import atexit
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "S", "E1", "E2", "E3", "TLS", "CMD"]
MUDUO_MIRROR = "/work/.mirror/chenshuo+muduo/repo"
SERVER_CPU, GENERATOR_CPU = "0", "1"

notes = []  # one line per thing skipped or worth knowing, printed under the tables


def note(text):
    notes.append(text)
    print(f"note: {text}", file=sys.stderr, flush=True)


def log(text):
    print(text, file=sys.stderr, flush=True)


# --- processes we start, and only those, are stopped by pid -----------------------------------

started = []  # Popen objects


def start(argv, **kw):
    proc = subprocess.Popen(argv, **kw)
    started.append(proc)
    return proc


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def stop(proc):
    """SIGTERM, then SIGKILL after 5 s; also the direct children it forked (socat's)."""
    if proc.poll() is None:
        kids = children_of(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for kid in kids:
            try:
                os.kill(kid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if proc in started:
        started.remove(proc)


def stop_all():
    for proc in list(started):
        stop(proc)


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


# --- small helpers ------------------------------------------------------------------------------

def run(argv, **kw):
    return subprocess.run(argv, check=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_connectable(port, proc, timeout=20):
    """For servers that print nothing when ready: poll connect() (there is no event to wait for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"not listening on port {port} after {timeout} s")


def read_ready_lines(proc, count, timeout=20):
    """Reads the first `count` stdout lines (the 'listening on' lines); drains the rest in a thread
    so a chatty server never blocks on a full pipe."""
    lines, done = [], threading.Event()

    def reader():
        for line in proc.stdout:
            if len(lines) < count:
                lines.append(line.strip())
                if len(lines) == count:
                    done.set()
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    if not done.wait(timeout) or len(lines) < count:
        raise RuntimeError(f"no ready line within {timeout} s (got {lines})")
    return lines


def round_trip(port, mode):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"hello World 42")
        want = b"HELLO WORLD 42" if mode == "upper" else b"hello World 42"
        got = b""
        while len(got) < len(want):
            chunk = s.recv(64)
            if not chunk:
                break
            got += chunk
        if got != want:
            raise RuntimeError(f"answered {got!r} to 'hello World 42' ({mode} expected)")


def cpu_ticks(pid):
    """utime + stime + cutime + cstime (the last two: children reaped, e.g. socat's forks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15])


def median_range(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "samples": values}


def pin(cpu, argv):
    return ["taskset", "-c", cpu, *argv] if cpu and shutil.which("taskset") else argv


# --- build and packages -------------------------------------------------------------------------

def ensure_packages(names):
    missing = [n for n in names
               if subprocess.run(["dpkg", "-s", n], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        note(f"missing Debian packages {', '.join(missing)} (not root or no apt-get): skipped")
        return
    log(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env,
                      stdout=subprocess.DEVNULL).returncode != 0:
        run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        if subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env,
                          stdout=subprocess.DEVNULL).returncode != 0:
            note(f"apt-get could not install {', '.join(missing)}")


def build(args):
    if args.build_dir is None:
        args.build_dir = os.path.join(ROOT, "build", "release")
        if not args.no_build:
            log("building: cmake --preset release && cmake --build --preset release")
            run(["cmake", "--preset", "release"], cwd=ROOT, stdout=subprocess.DEVNULL)
            run(["cmake", "--build", "--preset", "release"], cwd=ROOT)
    elif not args.no_build:
        if not os.path.exists(os.path.join(args.build_dir, "CMakeCache.txt")):
            run(["cmake", "-S", ROOT, "-B", args.build_dir, "-G", "Ninja",
                 "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DDUPLEX_BUILD_TESTS=OFF"],
                stdout=subprocess.DEVNULL)
        run(["cmake", "--build", args.build_dir, "--target", "duplex", "bench_refs"])
    bins = {
        "duplex": os.path.join(args.build_dir, "apps", "duplex", "duplex"),
        **{name: os.path.join(args.build_dir, "bench", name)
           for name in ("epoll_upper", "asio_upper", "spawn_rate", "proc_time")},
    }
    if args.duplex:
        bins["duplex"] = os.path.abspath(args.duplex)
    for name, path in bins.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"suite: {path} is missing (build it, or drop --no-build)")
    return bins


def build_muduo(out_dir, budget_s):
    """muduo's pingpong server from a fetched copy (never committed), built out of tree."""
    binary = os.path.join(out_dir, "obj", "bin", "pingpong_server")
    if os.access(binary, os.X_OK):
        return binary
    src = os.environ.get("MUDUO_SRC")
    if not src:
        if not os.path.isdir(MUDUO_MIRROR):
            note("muduo skipped: no source (set MUDUO_SRC to a muduo checkout, or fetch "
                 "github:chenshuo/muduo into /work/.mirror)")
            return None
        src = os.path.join(out_dir, "src")
        if not os.path.isdir(src):
            os.makedirs(src)
            archive = subprocess.Popen(["git", "--git-dir", MUDUO_MIRROR, "archive", "HEAD"],
                                       stdout=subprocess.PIPE)
            run(["tar", "-x", "-C", src], stdin=archive.stdout)
            archive.wait()
    try:
        log(f"building muduo's pingpong_server (at most {budget_s} s)")
        deadline = time.monotonic() + budget_s
        run(["cmake", "-S", src, "-B", os.path.join(out_dir, "obj"), "-G", "Ninja",
             "-DCMAKE_BUILD_TYPE=Release", "-DMUDUO_BUILD_EXAMPLES=ON"],
            stdout=subprocess.DEVNULL, timeout=budget_s)
        run(["cmake", "--build", os.path.join(out_dir, "obj"), "-j2", "--target",
             "pingpong_server"], stdout=subprocess.DEVNULL,
            timeout=max(1, deadline - time.monotonic()))
        return binary
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        note(f"muduo skipped: its build failed ({e})")
        return None


def machine_record(args, bins):
    def first_line(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "?"

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cache = {}
    with open(os.path.join(args.build_dir, "CMakeCache.txt")) as f:
        for line in f:
            if "=" in line and ":" in line.split("=", 1)[0]:
                key, value = line.rstrip("\n").split("=", 1)
                cache[key.split(":")[0]] = value
    commit = first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD"]).returncode != 0
    return {
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
        "compiler": first_line([cache.get("CMAKE_CXX_COMPILER", "c++"), "--version"]),
        "build_type": cache.get("CMAKE_BUILD_TYPE", "?"), "build_dir": args.build_dir,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "load_average": os.getloadavg(),
        "duplex_version": first_line([bins["duplex"], "--version"]),
        "duplex_binary": bins["duplex"],
    }


# --- the servers of the network workloads --------------------------------------------------------

class ServerSpec:
    """How to start one server: argv ('{port}' stands for the port: 0, or
    one we pick), whether it prints
    'listening on', what it answers (upper or echo), its CPU pin, and which workloads it takes."""

    def __init__(self, name, argv, verify="upper", prints_url=True, cpu=SERVER_CPU,
                 workloads=("W1", "W2", "W3", "W4", "W5"), describe="", quiet=False):
        self.name, self.argv, self.verify, self.prints_url = name, argv, verify, prints_url
        self.cpu, self.workloads, self.describe, self.quiet = cpu, workloads, describe, quiet


class RunningServer:
    def __init__(self, spec):
        self.spec = spec
        port = 0 if spec.prints_url else free_port()
        argv = [a.replace("{port}", str(port)) for a in spec.argv]
        self.proc = start(pin(spec.cpu, argv), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE if spec.prints_url else subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL if spec.quiet else None, text=True)
        try:
            if spec.prints_url:
                url = read_ready_lines(self.proc, 1)[0].split()[-1]
                port = int(url.rsplit(":", 1)[1])
            else:
                wait_connectable(port, self.proc)
            self.port = port
            round_trip(port, spec.verify)
        except Exception:
            stop(self.proc)
            raise

    @property
    def url(self):
        return f"tcp://127.0.0.1:{self.port}"

    def close(self):
        stop(self.proc)


def server_specs(bins, seed_copy, muduo):
    py = sys.executable
    here = os.path.dirname(os.path.abspath(__file__))
    specs = [
        ServerSpec("duplex -t1", [bins["duplex"], "serve", "-q", "-l", "tcp://127.0.0.1:{port}",
                                  "--threads", "1", "--max-connections", "12000"],
                   describe="`duplex serve --threads 1`"),
        ServerSpec("duplex", [bins["duplex"], "serve", "-q", "-l", "tcp://127.0.0.1:{port}",
                              "--max-connections", "12000"], cpu=None,
                   describe="`duplex serve`, one thread per core (not pinned)"),
        ServerSpec("epoll C", [bins["epoll_upper"], "{port}"],
                   describe="bench/ref/epoll_upper.c"),
        ServerSpec("Asio coroutines", [bins["asio_upper"], "{port}"],
                   describe="bench/ref/asio_upper.cpp"),
    ]
    if muduo:
        specs.append(ServerSpec("muduo pingpong", [muduo, "127.0.0.1", "{port}", "1"],
                                verify="echo", prints_url=False,
                                describe="muduo examples/pingpong/server, 1 thread (echo)"))
    if shutil.which("socat"):
        specs.append(ServerSpec(
            "socat", ["socat", "TCP-LISTEN:{port},fork,reuseaddr,bind=127.0.0.1", "PIPE"],
            verify="echo", prints_url=False, cpu=None, workloads=("W1", "W2", "W3", "W4"),
            describe="a process per connection, pure echo (not pinned: its forks spread)",
            quiet=True))  # each fork logs 'Broken pipe' when a client leaves mid-reply
    threaded = os.path.join(here, "ref", "threaded_server.py")
    specs.append(ServerSpec("Python threaded", [py, threaded, "{port}"],
                            describe="bench/ref/threaded_server.py (thread per connection)"))
    if seed_copy:
        specs.append(ServerSpec("tutorial server.py", [py, seed_copy, "{port}"],
                                prints_url=False, workloads=("W1",),
                                describe="the seed's server.py, one client at a time"))
    return specs


def seed_server_copy(tmp):
    seed_dir = os.environ.get("DUPLEX_SEED_DIR") or os.path.join(ROOT, "..", "shared", "seed",
                                                                   "python")
    path = os.path.join(seed_dir, "server.py")
    if not os.path.exists(path):
        note(f"the tutorial's server.py skipped: not found in {seed_dir} (set DUPLEX_SEED_DIR)")
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if "server_port = 8080" not in text:
        note("the tutorial's server.py skipped: it no longer says 'server_port = 8080'")
        return None
    copy = os.path.join(tmp, "seed_server.py")
    with open(copy, "w", encoding="utf-8") as f:
        f.write(text.replace("server_port = 8080", "import sys; server_port = int(sys.argv[1])"))
    return copy


# --- the load generator -------------------------------------------------------------------------

def duplex_bench(bins, url, extra, pinned, timeout):
    argv = [bins["duplex"], "bench", url, *extra, "--json"]
    if pinned:
        argv = pin(GENERATOR_CPU, argv + ["--threads", "1"])
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"duplex bench exit {proc.returncode}: "
                           f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    result["exit"] = proc.returncode
    # The generator's own CPU over its run: near 1 (a whole CPU) it, not the server, sets the pace.
    result["generator_cpu_share"] = (after.ru_utime + after.ru_stime - before.ru_utime
                                     - before.ru_stime) / wall
    if proc.returncode != 0 or result.get("errors"):
        result["stderr"] = proc.stderr.strip()[-500:]
    return result


def network_cell(bins, workload, server, cfg):
    d = cfg.duration
    common = ["--protocol", "raw", "--verify", server.spec.verify]
    pinned = server.spec.cpu is not None
    if workload in ("W1", "W2", "W3"):
        conns, size = {"W1": (1, 64), "W2": (100, 64), "W3": (100, 16384)}[workload]
        before, t0 = cpu_ticks(server.proc.pid), time.monotonic()
        r = duplex_bench(bins, server.url, ["-c", str(conns), "-s", str(size), "-d", str(d),
                                            *common], pinned, d + 60)
        # Beside the generator's share: which side (or neither: a busy machine) set the pace.
        r["server_cpu_share"] = ((cpu_ticks(server.proc.pid) - before)
                                 / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0))
        value = r["latency_us"]["p50"] if workload == "W1" else r["msg_per_s"]
        return value, r
    if workload == "W4":
        before, t0 = cpu_ticks(server.proc.pid), time.monotonic()
        r = duplex_bench(bins, server.url, ["--mode", "storm", "-c", "16", "-s", "64", "-d",
                                            str(d), "--warmup", "0", *common], pinned, d + 60)
        ticks = cpu_ticks(server.proc.pid) - before
        cpu_s = ticks / os.sysconf("SC_CLK_TCK")
        r["server_cpu_s"] = cpu_s
        r["server_cpu_share"] = cpu_s / (time.monotonic() - t0)
        r["server_cpu_us_per_conn"] = cpu_s * 1e6 / max(1, r.get("connects", 0))
        return r["conn_per_s"], r
    if workload == "W5":
        r = duplex_bench(bins, server.url, ["--mode", "idle", "-c", str(cfg.idle_conns), "-s",
                                            "64", "--hold", "1", "--server-pid",
                                            str(server.proc.pid), *common], pinned, 180)
        return r["rss_per_conn_bytes"], r
    raise ValueError(workload)


def run_network(bins, specs, workloads, cfg, results):
    """Each workload, round after round, each server in turn; W5 on a fresh server each time."""
    live = {}
    try:
        for spec in specs:
            try:
                live[spec.name] = RunningServer(spec)
            except Exception as e:  # a reference that cannot start is a note, not the end
                note(f"{spec.name} skipped: {e}")
                results.setdefault("start", {})[spec.name] = {"values": [], "failures": [str(e)]}
        for workload in workloads:
            for rnd in range(cfg.rounds):
                for spec in specs:
                    if workload not in spec.workloads or spec.name not in live:
                        continue
                    cell = results.setdefault(workload, {}).setdefault(
                        spec.name, {"values": [], "runs": []})
                    server = RunningServer(spec) if workload == "W5" else live[spec.name]
                    try:
                        value, raw = network_cell(bins, workload, server, cfg)
                        errors = raw.get("errors", 0)
                        cell["runs"].append(raw)
                        cell["values"].append(value)
                        if errors:
                            cell.setdefault("errors", 0)
                            cell["errors"] += errors
                        log(f"{workload} round {rnd + 1} {spec.name}: {value:.1f}"
                            + (f" ({errors} errors)" if errors else ""))
                    except Exception as e:
                        cell.setdefault("failures", []).append(str(e))
                        log(f"{workload} round {rnd + 1} {spec.name}: FAILED {e}")
                    finally:
                        if workload == "W5":
                            server.close()
    finally:
        for server in live.values():
            server.close()


# --- exec workloads -----------------------------------------------------------------------------

def proc_time(bins, argv, runs, env=None, timeout=600):
    proc = subprocess.run([bins["proc_time"], "-n", str(runs), *argv], capture_output=True,
                          text=True, env=env, timeout=timeout)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"proc_time {argv[0]}: {proc.stderr.strip()[-300:]}")
    if out["failures"]:
        raise RuntimeError(f"{' '.join(argv)[:120]} failed {out['failures']} of {runs} runs")
    return out["times_ms"]


class ExecServer:
    """`duplex serve --exec --tls` on 127.0.0.1:0 and a Unix socket, in a temp config dir."""

    def __init__(self, bins, tmp):
        self.cfg = os.path.join(tmp, "duplex-config")
        os.makedirs(self.cfg, exist_ok=True)
        self.env = dict(os.environ, XDG_CONFIG_HOME=self.cfg)
        self.sock = os.path.join(tmp, "exec.sock")
        self.proc = start([bins["duplex"], "serve", "-q", "--exec", "--tls", "--allow-root",
                           "-l", "tcp://127.0.0.1:0", "-l", "unix://" + self.sock],
                          stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          env=self.env)
        lines = read_ready_lines(self.proc, 3)
        urls = [l.split()[-1] for l in lines if l.startswith("listening on ")]
        fingerprint = next(l.split()[-1] for l in lines if l.startswith("fingerprint "))
        self.port = next(u for u in urls if u.startswith("tcp://")).rsplit(":", 1)[1]
        self.unix = "unix://" + self.sock
        self.tcp = f"tcp://127.0.0.1:{self.port}"
        self.tls = f"tls://127.0.0.1:{self.port}"
        self.sessions = os.path.join(self.cfg, "duplex", "tls_sessions")
        # Pin the key once, as a user does on first contact.
        run([bins["duplex"], "exec", "--fingerprint", fingerprint, self.tls, "--", "true"],
            env=self.env, timeout=30, stdin=subprocess.DEVNULL)

    def close(self):
        stop(self.proc)


class Sshd:
    """Debian's sshd on a free loopback port with its own config, host key and user key."""

    def __init__(self, tmp):
        d = os.path.join(tmp, "sshd")
        os.makedirs(d, mode=0o700)
        self.key = os.path.join(d, "user_key")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "host_key")])
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.key])
        shutil.copy(self.key + ".pub", os.path.join(d, "authorized_keys"))
        self.port = free_port()
        config = os.path.join(d, "sshd_config")
        with open(config, "w") as f:
            f.write(f"Port {self.port}\nListenAddress 127.0.0.1\n"
                    f"HostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
                    f"AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\n"
                    "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\nUsePAM no\nPrintMotd no\n"
                    "Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com\n"
                    # bash reads ~/.bashrc when run by sshd at SHLVL 0 (root's here runs pyenv
                    # init: ~0.4 s a command); duplex exec reads no rc file either.
                    "SetEnv SHLVL=1\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        self.proc = start(["/usr/sbin/sshd", "-D", "-e", "-f", config],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(d, "sshd.log"), "w"))
        wait_connectable(self.port, self.proc)
        self.control = os.path.join(d, "control")
        self.base = ["ssh", "-F", "/dev/null", "-i", self.key, "-p", str(self.port),
                     "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
                     "-o", f"UserKnownHostsFile={d}/known_hosts", "-o", "LogLevel=ERROR",
                     "-c", "aes128-gcm@openssh.com"]
        run([*self.base, "root@127.0.0.1", "true"], timeout=30, stdin=subprocess.DEVNULL)
        self.master = start([*self.base, "-o", "ControlMaster=yes", "-o",
                             f"ControlPath={self.control}", "-N", "root@127.0.0.1"],
                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.control):  # the master makes it once it has logged in
            if self.master.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the ssh ControlMaster did not start")
            time.sleep(0.05)
        self.muxed = [*self.base, "-o", "ControlMaster=no", "-o", f"ControlPath={self.control}"]

    def close(self):
        stop(self.master)
        stop(self.proc)


def measure(results, workload, name, unit, fn):
    """Runs one measurement (fn returns samples and the raw record); a failure is kept in the
    cell, not raised, so one broken comparison does not lose the others."""
    cell = results.setdefault(workload, {}).setdefault(name, {"values": [], "unit": unit})
    try:
        values, raw = fn()
    except Exception as e:
        cell.setdefault("failures", []).append(str(e))
        log(f"{workload} {name}: FAILED {e}")
        return
    cell["values"].extend(values)
    if raw is not None:
        cell.setdefault("runs", []).append(raw)
        if raw.get("errors"):
            cell["errors"] = cell.get("errors", 0) + raw["errors"]


def run_exec(bins, workloads, cfg, results, tmp):
    try:
        server = ExecServer(bins, tmp)
    except Exception as e:
        for w in workloads:
            results.setdefault(w, {})["duplex exec server"] = {"values": [], "failures": [str(e)]}
        note(f"exec workloads not run: the exec server did not start ({e})")
        return
    sshd = None
    try:
        if {"TLS", "CMD"} & set(workloads):
            if shutil.which("ssh") and os.path.exists("/usr/sbin/sshd"):
                try:
                    sshd = Sshd(tmp)
                except Exception as e:
                    note(f"ssh comparisons skipped: the local sshd did not start ({e})")
            else:
                note("ssh comparisons skipped: openssh-server is not installed")
        duplex, env, bulk, n = bins["duplex"], server.env, cfg.bulk, cfg.start_runs

        def timed(argv, runs=1, environ=env):
            return lambda: (proc_time(bins, argv, runs, env=environ), None)

        def pipeline(producer):
            return ["sh", "-c", f"{producer} | cat >/dev/null"]

        def exec_rate(par):
            r = duplex_bench(bins, server.unix, ["--mode", "exec", "-c", str(par), "-d",
                                                 str(cfg.duration)], False, cfg.duration + 60)
            return [r["cmd_per_s"]], r

        def spawn_rate(par):
            out = subprocess.run([bins["spawn_rate"], "-c", str(par), "-d", str(cfg.duration)],
                                 capture_output=True, text=True, timeout=cfg.duration + 60)
            r = json.loads(out.stdout)
            return [r["cmd_per_s"]], r

        def full_handshakes():
            times = []
            for _ in range(n):  # no saved session: a full handshake each time
                if os.path.exists(server.sessions):
                    os.unlink(server.sessions)
                times += proc_time(bins, [duplex, "exec", server.tls, "--", "true"], 1, env=env)
            return times, None

        head = f"head -c {bulk} /dev/zero"
        for rnd in range(cfg.rounds):
            log(f"exec round {rnd + 1}")
            if "S" in workloads:
                measure(results, "S", "duplex exec unix:// -- true", "ms",
                        timed([duplex, "exec", server.unix, "--", "true"], n))
                measure(results, "S", "/bin/true", "ms", timed(["/bin/true"], n))
                measure(results, "S", "duplex --version", "ms",
                        timed([duplex, "--version"], n))
            for workload, par in (("E1", 1), ("E2", 8)):
                if workload in workloads:
                    measure(results, workload, "duplex exec (persistent, unix://)", "cmd/s",
                            lambda: exec_rate(par))
                    measure(results, workload, f"local posix_spawn sh -c true x{par}", "cmd/s",
                            lambda: spawn_rate(par))
            if "E3" in workloads:
                for transport, url in (("unix", server.unix), ("tcp", server.tcp)):
                    measure(results, "E3", f"duplex exec {transport}:// -- {head} | cat", "ms",
                            timed(pipeline(f"{duplex} exec {url} -- {head}")))
                measure(results, "E3", f"{head} | cat", "ms", timed(pipeline(head)))
            if "TLS" in workloads:
                measure(results, "TLS", f"duplex exec tls:// -- {head} | cat", "ms",
                        timed(pipeline(f"{duplex} exec {server.tls} -- {head}")))
                if sshd:
                    remote = " ".join(sshd.base)
                    measure(results, "TLS", f"ssh -c aes128-gcm '{head}' | cat", "ms",
                            timed(pipeline(f"{remote} root@127.0.0.1 '{head}'")))
            if "CMD" in workloads:
                for name, url in (("duplex exec unix://", server.unix),
                                  ("duplex exec tcp://", server.tcp),
                                  ("duplex exec tls:// (resumed)", server.tls)):
                    measure(results, "CMD", name, "ms",
                            timed([duplex, "exec", url, "--", "true"], n))
                measure(results, "CMD", "duplex exec tls:// (full handshake)", "ms",
                        full_handshakes)
                if sshd:
                    measure(results, "CMD", "ssh", "ms",
                            timed([*sshd.base, "root@127.0.0.1", "true"], n, None))
                    measure(results, "CMD", "ssh, ControlMaster", "ms",
                            timed([*sshd.muxed, "root@127.0.0.1", "true"], n, None))
    finally:
        if sshd:
            sshd.close()
        server.close()


# --- report -------------------------------------------------------------------------------------

def fmt(v, unit=""):
    if v is None:
        return "–"
    if unit == "ms":
        return f"{v:.2f}" if v < 100 else f"{v:.0f}"
    if abs(v) >= 10000:
        return f"{v / 1000:.1f}k"
    return f"{v:.1f}" if abs(v) < 100 else f"{v:.0f}"


GENERATOR_BOUND = 0.9  # of one CPU


def generator_bound(cell):
    shares = [r.get("generator_cpu_share", 0) for r in cell.get("runs", [])]
    return bool(shares) and statistics.median(shares) >= GENERATOR_BOUND


def starved(cell):
    """Many connections in flight, yet neither side used half its CPU: something else had the
    CPUs (on a shared machine, other processes on the pinned ones)."""
    shares = [max(r.get("generator_cpu_share", 1), r.get("server_cpu_share", 1))
              for r in cell.get("runs", []) if r.get("connections", 0) >= 100
              and r.get("mode") == "pingpong"]
    return bool(shares) and statistics.median(shares) < 0.5


def cell_text(cell, unit=""):
    mr = median_range(cell.get("values", []))
    if not mr:
        return "failed" if cell.get("failures") else "–"
    text = f"{fmt(mr['median'], unit)} ({fmt(mr['min'], unit)}–{fmt(mr['max'], unit)})"
    if generator_bound(cell):
        text += " †"
    if starved(cell):
        text += " ‡"
    if cell.get("errors"):
        text += f" **{cell['errors']} errors**"
    if cell.get("failures"):
        text += f" ({len(cell['failures'])} failed)"
    return text


def med(results, workload, name):
    cell = results.get(workload, {}).get(name)
    mr = median_range(cell["values"]) if cell else None
    return mr["median"] if mr else None


def ratio(a, b):
    return a / b if a is not None and b else None


NETWORK = [("W1", "W1 1 conn × 64 B p50 µs", "lower"),
           ("W2", "W2 100 conns × 64 B msg/s", "higher"),
           ("W3", "W3 100 conns × 16 KiB msg/s", "higher"),
           ("W4", "W4 storm ×16 conn/s", "higher"),
           ("W4cpu", "W4 server CPU µs/conn", "lower"),
           ("W5", "W5 RSS B/idle conn", "lower")]


def network_tables(results, specs, cfg):
    # W4's CPU per connection is a second number from the same runs.
    if "W4" in results:
        results["W4cpu"] = {
            name: {"values": [r["server_cpu_us_per_conn"] for r in cell.get("runs", [])],
                   "runs": []}
            for name, cell in results["W4"].items()}
    cols = [c for c in NETWORK if c[0] in results]
    if not cols:
        return []
    out = ["## Network: the tutorial's raw upper protocol over TCP on 127.0.0.1", "",
           f"Median of {cfg.rounds} round(s) (min–max); {cfg.duration} s per cell; servers run in "
           "turn within each round. Load generator: `duplex bench --protocol raw` on CPU "
           f"{GENERATOR_CPU} (one thread) against single-threaded servers pinned to CPU "
           f"{SERVER_CPU}; unpinned (both sides) against servers marked *.", "",
           "| server | " + " | ".join(c[1] for c in cols) + " |",
           "|---|" + "---:|" * len(cols)]
    for spec in specs:
        if not any(spec.name in results.get(c[0], {}) for c in cols):
            continue
        star = "*" if spec.cpu is None else ""
        row = [cell_text(results[c[0]][spec.name]) if spec.name in results.get(c[0], {})
               else "–" for c in cols]
        out.append(f"| {spec.name}{star} | " + " | ".join(row) + " |")
    for ours in ("duplex -t1", "duplex"):
        if not any(ours in results.get(c[0], {}) for c in cols):
            continue
        out += ["", f"{ours} relative to each (duplex ÷ other: throughput higher is better, "
                "latency, CPU and RSS lower is better):", "",
                "| vs | " + " | ".join(c[0] for c in cols) + " |", "|---|" + "---:|" * len(cols)]
        for spec in specs:
            if spec.name in ("duplex -t1", "duplex"):
                continue
            row = []
            for key, _, _ in cols:
                r = ratio(med(results, key, ours), med(results, key, spec.name))
                row.append(f"{r:.2f}×" if r is not None else "–")
            if any(x != "–" for x in row):
                out.append(f"| {spec.name} | " + " | ".join(row) + " |")
    if any(generator_bound(cell) for c in cols for cell in results[c[0]].values()):
        out += ["", f"† the load generator used ≥ {GENERATOR_BOUND:.0%} of a CPU (median over "
                "the rounds): the cell measures `duplex bench` as much as the server, and "
                "servers that all land on the same number are not being told apart."]
    if any(starved(cell) for c in cols for cell in results[c[0]].values()):
        out += ["", "‡ 100 connections in flight, yet neither the server nor the generator used "
                "half a CPU (median over the rounds; both are in results.json): other processes "
                "had the CPUs, so this cell says little about either. Rerun on a quiet machine."]
    out += ["", "Servers: " + "; ".join(f"{s.name}: {s.describe}" for s in specs) + "."]
    return out


def md(text):
    """A table cell: a shell pipeline's '|' would end the cell."""
    return text.replace("|", "\\|")


def bulk_bytes(text):
    return int(text[:-1]) << {"K": 10, "M": 20, "G": 30}[text[-1]]


def exec_tables(results, cfg):
    """One table per group; 'speed' is the baseline's time over this one's (or this rate over the
    baseline's): above 1× is faster than the baseline."""
    out = []
    groups = [("S", "Client start-up, whole process (ms)", "ms", "/bin/true"),
              ("E1", "E1 exec rate, 1 at a time (commands/s)", "cmd/s", "local"),
              ("E2", "E2 exec rate, 8 in parallel (commands/s)", "cmd/s", "local"),
              ("E3", f"E3 bulk output, {cfg.bulk}iB, whole pipeline (ms)", "ms", "head"),
              ("TLS", f"TLS bulk, {cfg.bulk}iB, whole pipeline (ms)", "ms", "ssh"),
              ("CMD", "Per-command latency, `-- true`, whole process (ms)", "ms", "ssh")]
    for key, title, unit, base_prefix in groups:
        if key not in results:
            continue
        base = next((n for n in results[key] if n.startswith(base_prefix)), None)
        base_v = med(results, key, base) if base else None
        bulk = key in ("E3", "TLS")
        out += ["", f"### {title}", "",
                f"| | median (min–max) | samples | speed vs {md(base or '–')} |"
                + (" GB/s |" if bulk else ""),
                "|---|---:|---:|---:|" + ("---:|" if bulk else "")]
        for name, cell in results[key].items():
            v = med(results, key, name)
            speed = (ratio(v, base_v) if unit == "cmd/s" else ratio(base_v, v))
            row = (f"| {md(name)} | {cell_text(cell, unit)} | {len(cell['values'])} | "
                   + (f"{speed:.2f}×" if speed is not None else "–") + " |")
            if bulk:
                row += f" {bulk_bytes(cfg.bulk) / (v / 1000) / 1e9:.2f} |" if v else " – |"
            out.append(row)
    return (["", "## Exec: whole processes as a user runs them (not pinned)"] + out) if out else []


def targets(results, cfg):
    """The issue's targets, each as measured here: (what, value, target, met)."""
    rows = []

    def add(what, value, want, ok):
        if value is not None:
            rows.append((what, value, want, ok(value)))

    d = "duplex -t1"
    add("W2 ÷ Asio", ratio(med(results, "W2", d), med(results, "W2", "Asio coroutines")),
        "≥ 1.1×", lambda v: v >= 1.1)
    add("W2 ÷ epoll C", ratio(med(results, "W2", d), med(results, "W2", "epoll C")),
        "≥ 0.95×", lambda v: v >= 0.95)
    w2err = sum(results.get("W2", {}).get(n, {}).get("errors", 0) for n in (d, "duplex"))
    if "W2" in results:
        rows.append(("W2 errors (duplex)", w2err, "0", w2err == 0))
    add("W1 p50 ÷ epoll C", ratio(med(results, "W1", d), med(results, "W1", "epoll C")),
        "≤ 1.10×", lambda v: v <= 1.10)
    add("W3 ÷ epoll C", ratio(med(results, "W3", d), med(results, "W3", "epoll C")),
        "≥ 1.0×", lambda v: v >= 1.0)
    add("W4 CPU/conn ÷ epoll C", ratio(med(results, "W4cpu", d),
                                        med(results, "W4cpu", "epoll C")),
        "≤ 1.2×", lambda v: v <= 1.2)
    for name in (d, "duplex"):
        v = med(results, "W5", name)
        add(f"W5 RSS/idle conn ({name}), KiB", v / 1024 if v is not None else None, "≤ 1.2",
            lambda v: v <= 1.2)
    add("S `duplex exec unix:// -- true`, ms", med(results, "S", "duplex exec unix:// -- true"),
        "≤ 2", lambda v: v <= 2)
    add("E1 ÷ local spawn", ratio(med(results, "E1", "duplex exec (persistent, unix://)"),
                                  med(results, "E1", "local posix_spawn sh -c true x1")),
        "≥ 0.95×", lambda v: v >= 0.95)
    add("E2 ÷ local spawn ×8", ratio(med(results, "E2", "duplex exec (persistent, unix://)"),
                                     med(results, "E2", "local posix_spawn sh -c true x8")),
        "≥ 0.8×", lambda v: v >= 0.8)
    def first(workload, prefix):
        return next((n for n in results.get(workload, {}) if n.startswith(prefix)), None)

    local = first("E3", "head")
    for transport in ("unix", "tcp"):  # rates: the local pipeline's time over ours
        add(f"E3 {transport}:// ÷ local pipeline",
            ratio(med(results, "E3", local), med(results, "E3",
                                                 first("E3", f"duplex exec {transport}://"))),
            "≥ 0.6×", lambda v: v >= 0.6)
    add("TLS bulk ÷ ssh aes128-gcm", ratio(med(results, "TLS", first("TLS", "ssh")),
                                           med(results, "TLS", first("TLS", "duplex"))),
        "≥ 1.5×", lambda v: v >= 1.5)
    if not rows:
        return []
    out = ["", "## Targets (issue 9)", "", "| target | measured | wanted | met |",
           "|---|---:|---:|:---:|"]
    for what, value, want, ok in rows:
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        out.append(f"| {what} | {shown} | {want} | {'yes' if ok else '**no**'} |")
    return out


def report(results, specs, cfg, machine):
    lines = ["# duplex benchmark suite", "",
             f"{machine['date']} · commit {machine['commit']} · {machine['duplex_version']} · "
             f"{machine['build_type']} ({machine['compiler']})",
             f"{machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, load "
             f"average at start {machine['load_average'][0]:.2f}", "",
             f"Command: `{' '.join(sys.argv)}` (duplex: {machine['duplex_binary']})", ""]
    lines += network_tables(results, specs, cfg)
    lines += exec_tables(results, cfg)
    lines += targets(results, cfg)
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# --- main ---------------------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 round, 1 s cells, 256 MiB bulk")
    p.add_argument("--only", help="comma-separated workloads: " + ",".join(ALL_WORKLOADS))
    p.add_argument("--rounds", type=int, help="rounds per cell (default 3)")
    p.add_argument("--duration", type=float, help="seconds per cell (default 3)")
    p.add_argument("--idle-conns", type=int, default=10000, help="W5 connections")
    p.add_argument("--build-dir", help="use this build directory (default: the release preset)")
    p.add_argument("--no-build", action="store_true", help="use the binaries already built")
    p.add_argument("--duplex", help="this duplex binary instead of the build directory's")
    p.add_argument("--no-muduo", action="store_true", help="do not build or run muduo")
    p.add_argument("--smoke", action="store_true",
                   help="CI: every workload once, 0.5 s, duplex -t1 and one reference each, "
                        "no installs; exit 1 if anything errs or any server does not answer")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "results.md"))
    args = p.parse_args()
    if args.smoke:
        args.quick, args.no_muduo = True, True
        args.idle_conns = min(args.idle_conns, 500)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (0.5 if args.smoke else 1 if args.quick else 3)
    args.bulk = "64M" if args.smoke else "256M" if args.quick else "1G"
    args.start_runs = 3 if args.smoke else 10 if args.quick else 20
    args.only = [w.strip().upper() for w in args.only.split(",")] if args.only else ALL_WORKLOADS
    unknown = set(args.only) - set(ALL_WORKLOADS)
    if unknown:
        p.error(f"unknown workloads {', '.join(sorted(unknown))}")
    if args.build_dir:
        args.build_dir = os.path.abspath(args.build_dir)
    return args


def main():
    args = parse_args()
    atexit.register(stop_all)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers and W5's 10,000 sockets
    if hard < args.idle_conns + 1024:
        note(f"RLIMIT_NOFILE hard limit {hard} is low for {args.idle_conns} idle connections")

    packages = ["socat"] + (["libboost-dev"] if not args.no_muduo else [])
    if {"TLS", "CMD"} & set(args.only):
        packages += ["openssh-server", "openssh-client"]
    if not args.smoke:
        ensure_packages(packages)
    bins = build(args)
    machine = machine_record(args, bins)
    net_workloads = [w for w in args.only if w.startswith("W")]
    exec_workloads = [w for w in args.only if not w.startswith("W")]

    results = {}
    specs = []
    with tempfile.TemporaryDirectory(prefix="duplex-suite-") as tmp:
        if net_workloads:
            muduo = None if args.no_muduo else build_muduo(
                os.path.join(ROOT, "build", "bench", "muduo"), 900)
            specs = server_specs(bins, seed_server_copy(tmp), muduo)
            if args.smoke:
                specs = [s for s in specs if s.name in ("duplex -t1", "epoll C")]
            run_network(bins, specs, net_workloads, args, results)
        if exec_workloads:
            run_exec(bins, exec_workloads, args, results, tmp)

    text = report(results, specs, args, machine)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    raw_path = os.path.splitext(args.out)[0] + ".json"
    with open(raw_path, "w") as f:
        json.dump({"machine": machine, "options": {k: v for k, v in vars(args).items()},
                   "notes": notes, "results": results}, f, indent=1, default=str)
    log(f"wrote {args.out} and {raw_path}")
    failed = any(cell.get("failures") or cell.get("errors")
                 for group in results.values() for cell in group.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
