"""CLI: ``python -m tests.stack.operator --kubeconfig P --mode eda|aap ...`` plays the cloudkit operator until SIGTERM/SIGINT.

Options default from the operator's environment variables (``CLOUDKIT_*``, or the later ``OSAC_*``).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .controller import MODES, VARIANTS, Operator


def _env(name: str, default=None):
    """``CLOUDKIT_<name>``, else ``OSAC_<name>``, else ``default``."""
    return os.environ.get(f'CLOUDKIT_{name}') or os.environ.get(f'OSAC_{name}') or default


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(':')
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f'expected "Name: value", got {text!r}')
    return name.strip(), value.strip()


def parse_args(argv=None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(prog='python -m tests.stack.operator', description='cloudkit operator stand-in')
    parser.add_argument('--kubeconfig', default=os.environ.get('KUBECONFIG'), help='kubeconfig of the API server (default: $KUBECONFIG)')
    parser.add_argument('--mode', choices=MODES, default=_env('PROVISIONING_PROVIDER', 'eda'), help='eda (webhooks) or aap (AAP Direct)')
    parser.add_argument('--api-group', default='cloudkit.openshift.io', help='API group of ComputeInstance/Tenant')
    parser.add_argument('--variant', choices=VARIANTS, default='seed', help='seed: provisionJob + ansible_eda envelope; later: jobs[] + osac_job_vars')
    parser.add_argument('--namespace', help='only this namespace (default: all)')
    parser.add_argument('--create-webhook', default=_env('COMPUTE_INSTANCE_CREATE_WEBHOOK'), help='eda: URL the instance is POSTed to')
    parser.add_argument('--delete-webhook', default=_env('COMPUTE_INSTANCE_DELETE_WEBHOOK'), help='eda: URL for deletions')
    parser.add_argument('--webhook-header', action='append', type=_header, default=[], metavar='"NAME: VALUE"',
                        help='eda: extra header on webhook POSTs (repeatable), e.g. an event stream token')
    parser.add_argument('--aap-url', default=_env('AAP_URL'), help='aap: controller base URL ending in /api/controller')
    parser.add_argument('--aap-token', default=_env('AAP_TOKEN'), help='aap: OAuth2 bearer token')
    parser.add_argument('--provision-template', default=_env('AAP_PROVISION_TEMPLATE', 'innabox-create-compute-instance'))
    parser.add_argument('--deprovision-template', default=_env('AAP_DEPROVISION_TEMPLATE', 'innabox-delete-compute-instance'))
    parser.add_argument('--poll-interval', type=float, default=0.5, help='aap: seconds between job polls')
    parser.add_argument('--resend-after', type=float, default=30.0, help='seconds before an unreconciled instance is sent again')
    parser.add_argument('--max-sends', type=int, default=None, help='at most this many sends per spec version (default: no limit)')
    parser.add_argument('--verbose', '-v', action='store_true', help='debug logging')
    args = parser.parse_args(argv)
    if not args.kubeconfig:
        parser.error('--kubeconfig (or $KUBECONFIG) is required')
    if args.mode == 'eda' and not (args.create_webhook and args.delete_webhook):
        parser.error('--mode eda needs --create-webhook and --delete-webhook')
    if args.mode == 'aap' and not args.aap_url:
        parser.error('--mode aap needs --aap-url')
    return args


def main(argv=None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    operator = Operator(args.kubeconfig, mode=args.mode, api_group=args.api_group, variant=args.variant, create_webhook=args.create_webhook,
                        delete_webhook=args.delete_webhook, webhook_headers=dict(args.webhook_header), aap_url=args.aap_url,
                        aap_token=args.aap_token, provision_template=args.provision_template, deprovision_template=args.deprovision_template,
                        poll_interval=args.poll_interval, namespace=args.namespace, resend_after=args.resend_after, max_sends=args.max_sends)
    with operator:
        print(f'operator stand-in running ({args.mode}, {args.api_group}, {args.variant})', flush=True)
        stop.wait()
    return 0


if __name__ == '__main__':
    sys.exit(main())
