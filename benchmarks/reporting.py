"""How every benchmark hands back its result: a summary on stdout, the full report as JSON."""
import json

from common import results


def publish(report, out, summary=None):
  """Prints `summary` (default: the report as JSON) and, if `out` is given, writes the report
  there as strict JSON (common.results.write_json: atomic, non-finite numbers as null)."""
  print(json.dumps(report, indent=2) if summary is None else summary)
  if out:
    results.write_json(out, report)
    print(f"wrote {out}")


def add_round_arguments(parser, rounds=10, warmup=2):
  """--rounds and --warmup of a benchmark that times its variants interleaved, round by round."""
  parser.add_argument("--rounds", type=int, default=rounds,
                      help="timed rounds, each timing every variant once")
  parser.add_argument("--warmup", type=int, default=warmup, help="untimed rounds first")


def check_round_arguments(parser, args):
  """A clear usage error (exit 2) for a round count below 1 or a negative warm-up."""
  if args.rounds < 1 or args.warmup < 0:
    parser.error("--rounds must be >= 1 and --warmup >= 0")
