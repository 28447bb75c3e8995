"""Start or stop the local stack in the background: ``python -m tests.stack up|down --dir DIR [--api BACKEND]``.

``up`` starts a Kubernetes API and the KubeVirt stand-in as detached processes, waits until the API answers, and leaves
in DIR the kubeconfig, the process ids and the logs. The API is the embedded stand-in (``--api stand-in``) or
kube-apiserver, kube-controller-manager and etcd built from their Go modules behind the fault-switch proxy
(``--api kube-apiserver``; tests/stack/controlplane.py); the default comes from ``CLOUDKIT_TEST_API``, else the stand-in.
``down`` stops what DIR records. Used by the molecule scenario.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import apis

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def _start(directory: Path, name: str, args: list) -> int:
    with open(directory / f'{name}.log', 'wb') as log:
        process = subprocess.Popen([sys.executable, '-m'] + args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    (directory / f'{name}.pid').write_text(str(process.pid))
    return process.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def up(directory: Path, ready_delay: float, import_delay: float, api_backend: str = apis.STAND_IN) -> Path:
    """Start the API (stand-in or kube-apiserver) and kubevirt; return the kubeconfig path."""
    directory.mkdir(parents=True, exist_ok=True)
    down(directory)
    kubeconfig = directory / 'kubeconfig'
    kubeconfig.unlink(missing_ok=True)
    if api_backend == apis.KUBE_APISERVER:
        api = _start(directory, 'kubeapi', ['tests.stack.controlplane', '--dir', str(directory / 'kube-apiserver'),
                                            '--kubeconfig', str(kubeconfig)])
    else:
        api = _start(directory, 'kubeapi', ['tests.stack.kubeapi', '--port', str(_free_port()), '--kubeconfig', str(kubeconfig)])
    deadline = time.monotonic() + 120
    while not kubeconfig.exists() or not kubeconfig.stat().st_size:
        if not _alive(api) or time.monotonic() > deadline:
            raise SystemExit('the API (%s) did not start; see %s' % (api_backend, directory / 'kubeapi.log'))
        time.sleep(0.05)
    _start(directory, 'kubevirt', ['tests.stack.kubevirt', '--kubeconfig', str(kubeconfig), '--ready-delay', str(ready_delay),
                                   '--import-delay', str(import_delay)])
    return kubeconfig


def down(directory: Path) -> list:
    """Stop every process DIR records (SIGTERM, then SIGKILL after 10 s); return their names."""
    stopped = []
    for pid_file in sorted(directory.glob('*.pid')):
        try:
            pid = int(pid_file.read_text())
        except (FileNotFoundError, ValueError):
            continue
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            stopped.append(pid_file.stem)
        pid_file.unlink()
    return stopped


def main(argv=None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog='python -m tests.stack', description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=['up', 'down'])
    parser.add_argument('--dir', required=True, type=Path, help='where the kubeconfig, pids and logs go')
    parser.add_argument('--ready-delay', type=float, default=0.5, help='seconds until a started VM is Ready')
    parser.add_argument('--import-delay', type=float, default=0.3, help='seconds until a DataVolume is imported')
    parser.add_argument('--api', choices=apis.BACKENDS, default=None,
                        help='the Kubernetes API: the embedded stand-in or kube-apiserver (default: CLOUDKIT_TEST_API, else stand-in)')
    args = parser.parse_args(argv)
    if args.command == 'up':
        print(up(args.dir.resolve(), args.ready_delay, args.import_delay, args.api or apis.selected()))
    else:
        print(' '.join(down(args.dir.resolve())) or 'nothing was running')
    return 0


if __name__ == '__main__':
    sys.exit(main())
