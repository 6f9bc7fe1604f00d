"""One command-line convention for every entry point (common/cli.py): snake_case long flags,
`--dataset` for a dataset, `--out` a file and `--out_dir` a folder, old spellings only as
deprecated aliases, user errors as one `error:` line with exit status 2.

The flag spellings are read from the source (argparse's add_argument and absl's DEFINE_*), so
the test covers every entry point without starting TensorFlow once per tool.
"""
import ast
import glob
import os

import pytest

from common import bdrate, cli, plot_rd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Old spellings the README showed, kept as aliases that warn (cli.warn_deprecated).
DEPRECATED_ALIASES = {"--group-key": "--group_key", "--images": "--dataset", "--out": "--out_dir"}


def project_sources():
  patterns = ("*.py", "common/*.py", "factorized/*.py", "mshyper/*.py", "benchmarks/*.py")
  return sorted(p for pattern in patterns for p in glob.glob(os.path.join(ROOT, pattern)))


def declared_flags():
  """(file, [option strings]) of every add_argument / DEFINE_* call with literal names."""
  declared = []
  for path in project_sources():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
      if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        continue
      names = [a.value for a in node.args if isinstance(a, ast.Constant)
               and isinstance(a.value, str)]
      if node.func.attr == "add_argument":
        declared.append((path, [n for n in names if n.startswith("--")]))
      elif node.func.attr.startswith("DEFINE_") and names:
        declared.append((path, ["--" + names[0]]))
  return declared


def test_every_long_flag_is_snake_case_or_a_deprecated_alias():
  declared = declared_flags()
  assert len(declared) > 80, "the source scan found too few flags"
  for path, options in declared:
    for position, option in enumerate(options):
      if position > 0 and DEPRECATED_ALIASES.get(option) == options[0]:
        continue
      assert option == option.lower() and "-" not in option[2:], \
          f"{os.path.relpath(path, ROOT)}: {option} is not a snake_case flag"


def test_old_spellings_are_aliases_of_the_new_flag_only():
  for path, options in declared_flags():
    for option in options:
      if option in ("--group-key", "--images"):
        assert options[0] == DEPRECATED_ALIASES[option], f"{path}: {options}"


def test_deprecated_alias_still_works_and_warns(capsys):
  anchor = os.path.join(ROOT, "anchors", "paper_2layer_kodak.json")
  bdrate.main(["--anchor", anchor, "--test", anchor, "--group-key", "name"])
  assert "warning: --group-key is deprecated; use --group_key." in capsys.readouterr().err


@pytest.mark.parametrize("tool,argv", [
    (bdrate, ["--anchor", "missing.json", "--test", "missing.json"]),
    (plot_rd, ["missing.json", "--out", "rd.png"]),
])
def test_user_error_is_one_error_line_and_exit_2(tool, argv, capsys, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(SystemExit) as exit_info:
    tool.main(argv)
  assert exit_info.value.code == cli.EXIT_USER_ERROR
  assert capsys.readouterr().err == "error: Result file not found: missing.json\n"
