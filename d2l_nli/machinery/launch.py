"""Start a distributed MXNet job: ``python -m d2l_nli.launch -n WORKERS -s SERVERS -- COMMAND``.

MXNet's ``dist_sync`` kvstore (ps-lite) needs one scheduler, some servers
and the workers, each told its role and the scheduler's address through
``DMLC_*`` variables. This launcher starts them all:

* on this machine over 127.0.0.1 (no ``--hosts``), to try it out and for
  the tests;
* over ssh on the machines of a host file (``--hosts FILE``: one host per
  line, ``#`` comments): the scheduler on the first host, servers and
  workers spread over the hosts in turn. Every host needs password-less ssh,
  this repository at the same path and the same Python environment.

Each output line is forwarded with its process (``[worker 1] ...``). When a
process fails, or on Ctrl-C, every other process is stopped and the
launcher exits non-zero saying which one failed. MXNet's own
``tools/launch.py`` is not used: it fails on Python >= 3.9.

Commands are argument lists, never strings for a local shell; for ssh, the
remote command line is built with :func:`shlex.join`, so every argument
arrives as it was given.
"""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

__all__ = ['main', 'Job']

SERVER_CODE = 'import mxnet'  # with DMLC_ROLE=scheduler/server, importing MXNet runs the role
_PID_TAG = 'D2L_NLI_REMOTE_PID '


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _die_with_parent():
    """In the child: become a process group, and get SIGKILL if the launcher dies (Linux)."""
    os.setsid()
    if sys.platform.startswith('linux'):
        import ctypes
        try:
            ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def read_hosts(path):
    """Host names of a host file: one per line; blank lines and ``#`` comments ignored."""
    try:
        lines = open(path, encoding='utf-8').read().splitlines()
    except OSError as err:
        raise SystemExit(f'launch: cannot read the host file {path}: {err.strerror}')
    hosts = []
    for number, line in enumerate(lines, start=1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        if len(line.split()) != 1 or line.startswith('-'):
            raise SystemExit(f'launch: {path}, line {number}: expected one host name, got '
                             f'{line!r}')
        hosts.append(line)
    if not hosts:
        raise SystemExit(f'launch: {path} names no host')
    return hosts


class Job:
    """The scheduler, servers and workers of one run, and what happens to them."""

    def __init__(self, command, num_workers, num_servers, hosts=None, port=None,
                 interface=None, python=None, out=None):
        self.command, self.hosts = list(command), hosts
        self.num_workers, self.num_servers = num_workers, num_servers
        local = hosts is None
        self.root = '127.0.0.1' if local else hosts[0]
        self.port = port or (_free_port() if local else 9091)
        self.interface = interface or (('lo0' if sys.platform == 'darwin' else 'lo')
                                       if local else None)
        self.python = python or sys.executable
        self.out = out or sys.stdout
        self.procs = []  # (name, host, Popen)
        self.remote_pids = {}
        self._lock = threading.Lock()
        self._threads = []

    def _env(self, role, host):
        env = {'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': self.root,
               'DMLC_PS_ROOT_PORT': str(self.port), 'DMLC_NUM_SERVER': str(self.num_servers),
               'DMLC_NUM_WORKER': str(self.num_workers), 'DMLC_NODE_HOST': host,
               'PYTHONUNBUFFERED': '1'}
        if self.interface:
            env['DMLC_INTERFACE'] = self.interface
        if role == 'worker' and self.hosts is None and 'D2L_NLI_THREADS' not in os.environ:
            # The workers share this machine's cores (D2L_NLI_THREADS overrides).
            threads = str(max(1, (os.cpu_count() or 1) // self.num_workers))
            env.update(D2L_NLI_THREADS=threads, OMP_NUM_THREADS=threads)
        return env

    def _argv(self, role, host, command):
        env = self._env(role, host)
        if self.hosts is None:
            return command, dict(os.environ, **env)
        remote = (f'echo {_PID_TAG}$$; cd {shlex.quote(os.getcwd())} && exec env '
                  + shlex.join([f'{k}={v}' for k, v in env.items()] + command))
        return ['ssh', '-o', 'BatchMode=yes', host, remote], dict(os.environ)

    def _start(self, name, role, host, command):
        argv, env = self._argv(role, host, command)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent)
        self.procs.append((name, host, proc))
        thread = threading.Thread(target=self._forward, args=(name, proc), daemon=True)
        thread.start()
        self._threads.append(thread)
        self._say(f'{name} started on {host} (pid {proc.pid})')

    def _say(self, text):
        with self._lock:
            self.out.write(f'launch: {text}\n')
            self.out.flush()

    def _forward(self, name, proc):
        for raw in iter(proc.stdout.readline, b''):
            line = raw.decode('utf-8', 'replace').rstrip('\r\n')
            if line.startswith(_PID_TAG):
                self.remote_pids[name] = line[len(_PID_TAG):].strip()
                continue
            with self._lock:
                self.out.write(f'[{name}] {line}\n')
                self.out.flush()
        proc.stdout.close()

    def start(self):
        hosts = self.hosts or ['127.0.0.1']
        self._say(f'scheduler at {self.root}:{self.port}, {self.num_servers} server(s), '
                  f'{self.num_workers} worker(s)')
        server = [self.python, '-c', SERVER_CODE]
        self._start('scheduler', 'scheduler', hosts[0], server)
        for i in range(self.num_servers):
            self._start(f'server {i}', 'server', hosts[i % len(hosts)], server)
        for i in range(self.num_workers):
            self._start(f'worker {i}', 'worker', hosts[i % len(hosts)], self.command)

    def wait(self, linger=30.0):
        """Wait for the workers; returns the exit status for the launcher."""
        workers = [(n, p) for n, _, p in self.procs if n.startswith('worker')]
        others = [(n, p) for n, _, p in self.procs if not n.startswith('worker')]
        others_done = None  # when a server or the scheduler ended cleanly
        while True:
            for name, proc in workers + others:
                code = proc.poll()
                if code is None or code == 0:
                    continue
                self._say(f'{name} (pid {proc.pid}) {_describe(code)}; stopping the other '
                          'processes')
                self.stop()
                return 1
            if all(p.poll() == 0 for _, p in workers):
                break
            if others_done is None and any(p.poll() == 0 for _, p in others):
                others_done = time.monotonic()
            # Servers end cleanly as the workers finish; workers still running long
            # after that would wait for them forever.
            if others_done is not None and time.monotonic() - others_done > linger:
                self._say('the servers ended but some workers did not; stopping them')
                self.stop()
                return 1
            time.sleep(0.05)
        # The servers and the scheduler end by themselves once the workers are done.
        deadline = time.monotonic() + linger
        while time.monotonic() < deadline and any(p.poll() is None for _, p in others):
            time.sleep(0.05)
        lingering = [n for n, p in others if p.poll() is None]
        if lingering:
            self._say(f'{", ".join(lingering)} still running {linger:.0f} s after the '
                      'workers finished; stopping')
        self.stop()
        self._say(f'all {self.num_workers} workers finished')
        return 0

    def stop(self, grace=5.0):
        """Stop every process still running (SIGTERM, then SIGKILL), here and on the hosts."""
        running = [(n, h, p) for n, h, p in self.procs if p.poll() is None]
        for name, host, proc in running:
            if self.hosts is not None and name in self.remote_pids:
                subprocess.run(['ssh', '-o', 'BatchMode=yes', host, 'kill', '-TERM',
                                self.remote_pids[name]], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=30, check=False)
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, _, proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for thread in self._threads:
            thread.join(timeout=5)


def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _describe(code):
    if code < 0:
        try:
            return f'was killed by {signal.Signals(-code).name}'
        except ValueError:
            return f'was killed by signal {-code}'
    return f'exited with status {code}'


def build_parser():
    parser = argparse.ArgumentParser(
        prog='python -m d2l_nli.launch',
        description='Start an MXNet dist_sync job: scheduler, servers and workers.',
        epilog='Example: python -m d2l_nli.launch -n 2 -s 1 -- python -m d2l_nli finetune '
               '--kvstore dist_sync --pretrained checkpoints/bert')
    parser.add_argument('-n', '--num-workers', type=int, required=True, metavar='WORKERS')
    parser.add_argument('-s', '--num-servers', type=int, default=1, metavar='SERVERS',
                        help='parameter servers (default: 1)')
    parser.add_argument('--hosts', metavar='FILE',
                        help='run over ssh on these hosts, one per line (default: this '
                             'machine, over 127.0.0.1)')
    parser.add_argument('--port', type=int, help="the scheduler's port (default: a free "
                        'port here, 9091 with --hosts)')
    parser.add_argument('--interface', help='network interface the processes use (e.g. eth0)')
    parser.add_argument('--python', help='Python on the hosts for the scheduler and servers '
                        '(default: this one)')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='-- then the command each worker runs')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        print('launch: give the workers\' command after --', file=sys.stderr)
        return 2
    if args.num_workers < 1 or args.num_servers < 1:
        print('launch: -n and -s must be at least 1', file=sys.stderr)
        return 2
    hosts = read_hosts(args.hosts) if args.hosts else None
    job = Job(command, args.num_workers, args.num_servers, hosts, args.port, args.interface,
              args.python)

    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    try:
        job.start()
        return job.wait()
    except OSError as err:  # e.g. the command or ssh does not exist
        job._say(f'cannot start {err.filename or "a process"}: {err.strerror}; stopping '
                 'the other processes')
        return 1
    except KeyboardInterrupt:
        job._say('interrupted; stopping every process')
        return 130
    finally:
        job.stop()  # whatever happened, nothing is left running


if __name__ == '__main__':
    sys.exit(main())
