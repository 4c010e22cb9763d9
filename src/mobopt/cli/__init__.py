"""Command-line entry point (``mobopt <stage>`` / ``python -m mobopt <stage>``); the only layer the workflow calls.

One module per stage registers its commands, named as the workflow rules that run
them.  Heavy modules are imported inside each command, so importing this package
stays cheap and ``bench`` never loads TensorFlow.  A user-facing error is one
``error:`` line on stderr and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys

from mobopt import MobOptError, __version__
from mobopt.cli import bench, datasets, evaluate, models, optimize, report, workflow

#: Stage modules, in pipeline order (the order of ``mobopt --help``), then the config check.
STAGES = (datasets, models, optimize, evaluate, bench, report, workflow)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mobopt", description="Train, convert, evaluate and benchmark image classifiers "
                                "for mobile (LiteRT): the stages of the mobopt workflow.")
    p.add_argument("--version", action="version", version=f"mobopt {__version__}", help="print the version and exit")
    # An explicit metavar: the default would list every choice, the hidden ones too.
    sub = p.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND",
                           help="one stage; `mobopt COMMAND --help` lists its flags")
    for stage in STAGES:
        stage.register(sub)
    return p


def _os_message(exc: OSError) -> str:
    return f"{exc.filename}: {exc.strerror}" if exc.filename is not None and exc.strerror else str(exc)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except MobOptError as exc:
        message = str(exc)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        message = _os_message(exc)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EROFS):
            raise
        message = _os_message(exc)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    else:
        return 0
    print(f"error: {message}", file=sys.stderr)
    return 1
