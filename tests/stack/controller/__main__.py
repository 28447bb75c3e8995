"""CLI: ``python -m tests.stack.controller --port N --templates FILE --project-dir DIR [--token T]`` until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import sys

from ..loop_thread import until_signalled
from . import ControllerServer
from .api import DEFAULT_PAGE_SIZE


def parse_args(argv=None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(prog='python -m tests.stack.controller', description='AAP automation controller stand-in')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=0, help='0 picks a free port')
    parser.add_argument('--templates', required=True, help='YAML file: the job and workflow job templates')
    parser.add_argument('--project-dir', required=True, help='directory the templates\' playbooks are relative to')
    parser.add_argument('--token', help='bearer token (default: random, printed on the second line)')
    parser.add_argument('--username', help='also accept basic auth for this user')
    parser.add_argument('--password', help='password of --username')
    parser.add_argument('--page-size', type=int, default=DEFAULT_PAGE_SIZE, help='default page size of lists')
    parser.add_argument('--waiting-delay', type=float, default=0.1, help='seconds a job stays waiting')
    parser.add_argument('--work-dir', help='ansible-runner private data dirs go here (default: a temp dir, removed on exit)')
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start, announce the URL and token, wait for a signal, cancel running jobs and stop."""
    server = ControllerServer(templates=args.templates, project_dir=args.project_dir, token=args.token, port=args.port,
                              host=args.host, username=args.username, password=args.password, page_size=args.page_size,
                              waiting_delay=args.waiting_delay, work_dir=args.work_dir)
    await server.start_async()
    print(server.url, flush=True)
    if not args.token:
        print(server.token, flush=True)
    await until_signalled()
    await server.stop_async()


def main(argv=None) -> int:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
