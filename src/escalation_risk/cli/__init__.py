"""The ``escalation-risk`` command line: thin over the public API.

Exit codes: 0 ok, 1 the job failed (bad data, a refused action), 2 bad arguments,
3 the nightly job ran but rows were quarantined.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings

import click

from .._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="escalation-risk")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
@click.option("--key-file", type=click.Path(dir_okay=False), default=None,
              help="Pseudonym key file (made by `escalation-risk keygen`); default "
                   "$ESCALATION_RISK_PSEUDONYM_KEY_FILE. Before or after the subcommand.")
def main(verbose: bool, key_file: str | None) -> None:
    """Early warning of disputes likely to turn into crimes (民转刑).

    Names, id numbers and phones are pseudonymised with a secret key on load: make one
    with `escalation-risk keygen PATH` and pass --key-file PATH (or set
    ESCALATION_RISK_PSEUDONYM_KEY_FILE). There is no default key.
    """
    _use_key_file(key_file)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # A warning is a message to the operator here, not a pointer into our source.
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"


KEY_FILE_HELP = ("Pseudonym key file (made by `escalation-risk keygen`); default "
                 "$ESCALATION_RISK_PSEUDONYM_KEY_FILE. Before or after the subcommand.")


def _use_key_file(key_file: str | None) -> None:
    if key_file is not None:
        from ..pseudonym_keys import KEY_ENV, KEY_FILE_ENV
        os.environ[KEY_FILE_ENV] = key_file
        os.environ.pop(KEY_ENV, None)  # the option wins over a key in the environment


def _key_file_option() -> click.Option:
    return click.Option(["--key-file"], type=click.Path(dir_okay=False), default=None, expose_value=False,
                        is_eager=True, help=KEY_FILE_HELP,
                        callback=lambda _ctx, _param, value: _use_key_file(value))


def _with_key_file(command: click.Command) -> None:
    """``--key-file`` after any subcommand too (``escalation-risk nightly --key-file K ...``)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_key_file(sub)
    elif not any(p.name == "key_file" for p in command.params):
        command.params.append(_key_file_option())


def _register() -> None:
    from .data import keygen, sample, validate
    main.add_command(validate)
    main.add_command(sample)
    main.add_command(keygen)
    for module, names in (("model", ("train", "evaluate")), ("nightly", ("nightly",)), ("alerts", ("alerts",)),
                          ("governance", ("governance",)), ("drift", ("drift",)),
                          ("briefing", ("briefing",)), ("cases", ("cases",)), ("plans", ("plans_report",)),
                          ("store", ("store",)), ("serve", ("serve",)), ("users", ("users", "tokens"))):
        mod = importlib.import_module(f"{__name__}.{module}")
        for n in names:
            main.add_command(getattr(mod, n))
    for command in main.commands.values():
        _with_key_file(command)


_register()
