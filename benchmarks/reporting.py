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
