"""The `paygrid` console script: `serve` here, the cluster-free commands in `engine.cli`."""

from __future__ import annotations

import argparse
import sys

from engine import cli as engine_cli
from engine.config import Settings
from serve_app import environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paygrid", description="paygrid operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run paygrid in the foreground (what 'make run' does)")
    engine_cli.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command == "serve":
        settings = Settings()
        environment.apply(settings.data_dir, fast_ingress=settings.fast_ingress)
        from serve_app.runner import serve_forever

        return serve_forever(settings)
    return engine_cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
