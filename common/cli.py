"""What every command-line entry point shares: how it reports a user's mistake (one
`error: ...` line on stderr and exit status 2, like argparse's usage errors; the traceback only
with --debug), which flags its --help lists, and how old flag spellings keep working.

Flag convention: long flags in snake_case (`--group_key`), `--dataset` for a dataset name or
glob, `--out` for an output file and `--out_dir` for an output folder. A renamed flag keeps its
old spelling as a deprecated alias that warns (warn_deprecated).

Mistakes are the exceptions raised for bad input: ValueError (bad values, configs, images,
bitstreams, checkpoints of another model), KeyError (unknown config keys), OSError (missing,
unreadable or unwritable paths) and RunLockedError (a run directory in use). Anything else is
a bug and keeps its traceback.
"""
import contextlib
import sys

from absl import flags

from common import config_utils, run_lock

EXIT_USER_ERROR = 2
USER_ERRORS = (ValueError, KeyError, OSError, run_lock.RunLockedError)


def message(error):
  if isinstance(error, KeyError) and error.args:
    return str(error.args[0])  # str(KeyError) would quote it.
  if isinstance(error, OSError) and error.strerror and error.filename:
    return f"{error.strerror}: {error.filename}"
  return str(error)


def fail(text):
  print(f"error: {text}", file=sys.stderr)
  sys.exit(EXIT_USER_ERROR)


@contextlib.contextmanager
def user_errors(debug=False):
  """Turns USER_ERRORS raised in the block into one error line and exit status 2."""
  try:
    yield
  except USER_ERRORS as e:
    if debug:
      raise
    fail(message(e))


def warn_deprecated(argv, renamed):
  """Warns on stderr for each deprecated spelling used in argv; renamed: {old: new flag}."""
  for arg in sys.argv[1:] if argv is None else argv:
    old = arg.split("=", 1)[0]
    if old in renamed:
      print(f"warning: {old} is deprecated; use {renamed[old]}.", file=sys.stderr)


def define_debug_flag():
  flags.DEFINE_bool("debug", False, "Show the full traceback of errors (a mistake in the "
                    "command line or its inputs otherwise prints one 'error:' line).")


def list_in_help(names):
  """Makes --help list these flags (absl lists only the main module's own flags there)."""
  for name in (*names, "debug", "verbosity"):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])


def parse_flags(argv):
  """absl flags_parser for app.run: a bad flag (e.g. an unknown config key) is one error line."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, *USER_ERRORS) as e:  # config_flags raises the others
    fail(config_utils.unknown_override(argv) or f"{message(e)} (see --helpshort)")
