"""Seeded fuzzing of a real .ntc file: bit flips, truncations, appended bytes, garbage, and
crafted headers (checksum recomputed), decoded in this process; prints a JSON summary.

`python tests/fuzz_bitstream.py --workdir RUN --file F.ntc --seed S --cases N`

Every case is classified: rejected (BitstreamError, i.e. one `error:` line from the CLI),
identical (decoded to exactly the original file's image, e.g. a checkpoint-step field changed
to another step with the same weights), wrong (decoded to any other image), crashed (any other
exception). Wall time is measured per case and peak RSS (ru_maxrss) over the loop, against the
process after loading the model and decoding the original once.
"""
import argparse
import json
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import codec, run_dir  # noqa: E402
from mshyper.models import Model  # noqa: E402

# Values a crafted size field takes: degenerate, limits, and large values near what the
# decoder allocates for.
SPECIAL_SIDES = (0, 1, 2, 63, 64, 65, 4096, 32767, 32768, 32769, 65535, 2 ** 31, 2 ** 32 - 1)
SPECIAL_DIMS = (0, 1, 2, 255, 4096, 65535)


def peak_rss_bytes():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def craft(data, version=codec.FORMAT_VERSION, **changes):
  """`data` with header fields replaced and the header checksum recomputed."""
  header = codec.parse_header(data)
  return (codec.pack_header(header._replace(**changes), version) +
          data[codec.header_size(len(header.latents)):])


def crafted_header(data, header, coder, rng):
  """(label, file) with one or more header fields set to chosen or random values."""
  side = lambda: int(rng.choice(SPECIAL_SIDES)) if rng.random() < 0.5 else int(
      rng.integers(1, 70000))
  kind = rng.choice(["size", "size+shapes", "shapes", "lengths", "checksums", "step",
                     "identity", "fingerprint", "version", "count"])
  latents = list(header.latents)
  if kind == "size":
    return kind, craft(data, height=side(), width=side())
  if kind == "size+shapes":  # consistent with the model: only the payload can give it away
    height, width = side(), side()
    if not (1 <= height <= 2 ** 20 and 1 <= width <= 2 ** 20):
      return kind, craft(data, height=height, width=width)
    expected = coder.expected_shapes(height, width)
    names = [name for name, _ in coder.model.CODED_LATENTS]
    shapes = [tuple(min(d, 65535) for d in expected[name]) for name in names]
    return kind, craft(data, height=height, width=width,
                       latents=[e._replace(shape=s) for e, s in zip(latents, shapes)])
  if kind == "shapes":
    i = int(rng.integers(len(latents)))
    shape = tuple(int(rng.choice(SPECIAL_DIMS)) if rng.random() < 0.5 else int(
        rng.integers(0, 300)) for _ in range(3))
    latents[i] = latents[i]._replace(shape=shape)
    return kind, craft(data, latents=latents)
  if kind == "lengths":  # move bytes between strings, keeping the total
    i, j = rng.choice(len(latents), 2, replace=len(latents) < 2)
    moved = int(rng.integers(-latents[j].length, latents[i].length + 1))
    latents[i] = latents[i]._replace(length=latents[i].length - moved)
    latents[j] = latents[j]._replace(length=latents[j].length + moved)
    return kind, craft(data, latents=latents)
  if kind == "checksums":
    i = int(rng.integers(len(latents)))
    latents[i] = latents[i]._replace(symbols_crc=int(rng.integers(2 ** 32)))
    return kind, craft(data, latents=latents)
  if kind == "step":
    return kind, craft(data, step=int(rng.integers(2 ** 32)))
  if kind == "identity":
    return kind, craft(data, identity=rng.bytes(8))
  if kind == "fingerprint":
    return kind, craft(data, fingerprint=rng.bytes(8))
  if kind == "version":
    return kind, craft(data, version=int(rng.integers(256)))
  count = int(rng.choice([0, 1, 3, 255]))  # latent table of another length
  latents = (latents * 255)[:count]
  return kind, craft(data, latents=latents)


def mutation(data, header, coder, rng):
  """(label, file): one random damage or crafted header."""
  kind = rng.choice(["flip", "truncate", "append", "garbage", "crafted"], p=[.3, .1, .05, .05, .5])
  if kind == "flip":
    damaged = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
      damaged[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
    return kind, bytes(damaged)
  if kind == "truncate":
    return kind, data[:int(rng.integers(len(data)))]
  if kind == "append":
    return kind, data + rng.bytes(int(rng.integers(1, 64)))
  if kind == "garbage":
    return kind, codec.MAGIC[:int(rng.integers(5))] + rng.bytes(int(rng.integers(200)))
  label, crafted = crafted_header(data, header, coder, rng)
  return f"crafted {label}", crafted


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--file", required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--cases", type=int, default=300)
  args = parser.parse_args()
  data = Path(args.file).read_bytes()
  coder = run_dir.load_codec(args.workdir, Model)
  original = coder.decode(data)
  header = codec.parse_header(data)
  baseline_rss = peak_rss_bytes()
  rng = np.random.default_rng(args.seed)
  counts = dict(tried=0, rejected=0, identical=0, wrong=0, crashed=0)
  by_kind, reasons, failures, slowest = {}, {}, [], (0., "")
  for i in range(args.cases):
    kind, mutated = mutation(data, header, coder, rng)
    start = time.perf_counter()
    try:
      decoded = coder.decode(mutated)
      outcome = ("identical" if decoded.shape == original.shape and
                 np.array_equal(decoded, original) else "wrong")
    except codec.BitstreamError as e:
      outcome = "rejected"
      reason = " ".join(re.sub(r"[0-9a-f]*[0-9][0-9a-f]*", "N", str(e)).split()[:6])
      reasons[reason] = reasons.get(reason, 0) + 1
    except Exception as e:  # pylint: disable=broad-except
      outcome = "crashed"
      failures.append(f"case {i} ({kind}): {type(e).__name__}: {e}"[:300])
    seconds = time.perf_counter() - start
    if outcome == "wrong":
      failures.append(f"case {i} ({kind}): decoded to a wrong image")
    slowest = max(slowest, (seconds, f"case {i} ({kind})"))
    counts["tried"] += 1
    counts[outcome] += 1
    by_kind.setdefault(kind, dict(tried=0, rejected=0))
    by_kind[kind]["tried"] += 1
    by_kind[kind]["rejected"] += outcome == "rejected"
  print(json.dumps(dict(
      seed=args.seed, file_bytes=len(data), counts=counts, by_kind=by_kind, reasons=reasons,
      max_seconds=slowest[0], slowest_case=slowest[1],
      peak_rss_growth_bytes=peak_rss_bytes() - baseline_rss, baseline_rss_bytes=baseline_rss,
      failures=failures)))


if __name__ == "__main__":
  main()
