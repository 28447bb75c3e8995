"""CLI: ``python -m tests.stack.kubeapi --port N --kubeconfig PATH [--crds DIR ...]`` runs the stand-in until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import sys

from ..loop_thread import until_signalled
from . import DEFAULT_CRD_DIR, KubeAPIServer


def parse_args(argv=None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(prog='python -m tests.stack.kubeapi', description='Kubernetes API server stand-in')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=0, help='0 picks a free port')
    parser.add_argument('--kubeconfig', help='write a kubeconfig for this server here')
    parser.add_argument('--namespace', default='default', help='namespace of the kubeconfig context')
    parser.add_argument('--crds', action='append', help=f'CRD file or directory (repeatable; default {DEFAULT_CRD_DIR})')
    parser.add_argument('--token', help='bearer token (default: random)')
    parser.add_argument('--history', type=int, default=10000, help='watch history size (events) before 410 Expired')
    parser.add_argument('--bookmark-interval', type=float, default=60.0, help='seconds between watch BOOKMARK events')
    parser.add_argument('--fault-seed', type=int, help='seed of the fault switch RNG')
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start, announce the URL, wait for a signal, stop."""
    server = KubeAPIServer(crd_paths=args.crds or [DEFAULT_CRD_DIR], port=args.port, token=args.token, host=args.host,
                           history=args.history, bookmark_interval=args.bookmark_interval, fault_seed=args.fault_seed)
    await server.start_async()
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig, args.namespace)
    print(server.url, flush=True)
    await until_signalled()
    await server.stop_async()


def main(argv=None) -> int:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
