"""CLI: ``python -m tests.stack.kubevirt --kubeconfig PATH`` plays KubeVirt and CDI against that API server until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from . import KubeVirtController


def parse_args(argv=None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(prog='python -m tests.stack.kubevirt', description='KubeVirt + CDI stand-in controller')
    parser.add_argument('--kubeconfig', required=True, help='kubeconfig of the API server to drive')
    parser.add_argument('--namespace', help='only this namespace (default: all)')
    parser.add_argument('--ready-delay', type=float, default=0.5, help='seconds from VMI creation to Running')
    parser.add_argument('--import-delay', type=float, default=0.3, help='seconds from DataVolume creation to Succeeded')
    parser.add_argument('--verbose', '-v', action='store_true', help='debug logging')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    with KubeVirtController(args.kubeconfig, ready_delay=args.ready_delay, import_delay=args.import_delay, namespace=args.namespace):
        print('kubevirt stand-in running', flush=True)
        stop.wait()
    return 0


if __name__ == '__main__':
    sys.exit(main())
