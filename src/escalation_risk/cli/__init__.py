"""The ``escalation-risk`` command line: thin over the public API.

Exit codes: 0 ok, 1 the job failed (bad data, a refused action), 2 bad arguments.
"""

from __future__ import annotations

import logging
import sys
import warnings

import click

from .._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="escalation-risk")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def main(verbose: bool) -> None:
    """Early warning of disputes likely to turn into crimes (民转刑)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # A warning is a message to the operator here, not a pointer into our source.
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"


def _register() -> None:
    from .data import sample, validate
    main.add_command(validate)
    main.add_command(sample)
    for module, names in (("model", ("train", "evaluate")), ("nightly", ("nightly",)), ("alerts", ("alerts",)),
                          ("governance", ("governance",)), ("drift", ("drift",)),
                          ("briefing", ("briefing",))):
        try:
            mod = __import__(f"{__name__}.{module}", fromlist=list(names))
        except ImportError:  # a subcommand module not built yet
            continue
        for n in names:
            main.add_command(getattr(mod, n))


_register()
