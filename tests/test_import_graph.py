"""The project's import graph, read from the source (ast, nothing is imported): no cycles, and
the result tools stay free of TensorFlow."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("common", "factorized", "mshyper", "benchmarks", "tests")


def project_modules():
  """{module name: source path} of every project module (top-level scripts and packages)."""
  modules = {}
  for name in os.listdir(ROOT):
    if name.endswith(".py"):
      modules[name[:-3]] = os.path.join(ROOT, name)
  for package in PACKAGES:
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
      for name in files:
        if name.endswith(".py"):
          path = os.path.join(folder, name)
          dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
          modules[dotted.removesuffix(".__init__")] = path
  return modules


def imported_modules(path, modules):
  """Project modules that the file at `path` imports, anywhere in it (also inside functions)."""
  imported = set()
  for node in ast.walk(ast.parse(open(path).read(), path)):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from common import codec` names module common.codec; `from a.b import f`, module a.b.
      names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
    else:
      continue
    imported.update(name for name in names if name in modules)
  return imported


def import_graph():
  modules = project_modules()
  graph = {name: imported_modules(path, modules) for name, path in modules.items()}
  for name in graph:  # A package's __init__ imports nothing of ours that matters here.
    graph[name].discard(name.rsplit(".", 1)[0])
  return graph


def find_cycle(graph):
  """One import cycle as [a, b, ..., a], or None (depth-first search)."""
  state = {}  # name -> "open" while on the search path, "done" once fully explored
  path = []

  def visit(name):
    state[name] = "open"
    path.append(name)
    for other in sorted(graph.get(name, ())):
      if state.get(other) == "open":
        return path[path.index(other):] + [other]
      if other not in state:
        cycle = visit(other)
        if cycle:
          return cycle
    path.pop()
    state[name] = "done"
    return None

  for name in sorted(graph):
    if name not in state:
      cycle = visit(name)
      if cycle:
        return cycle
  return None


def test_find_cycle_reports_a_cycle():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_graph_sees_imports_inside_functions():
  graph = import_graph()
  assert "common.run_dir" in graph["common.train_lib"]
  assert "common.codec" in graph["common.codec_cli"]  # imported inside main()


def test_project_has_no_import_cycle():
  cycle = find_cycle(import_graph())
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_configs_imports_nothing_of_the_project():
  assert import_graph()["configs"] == set()


def test_result_tools_do_not_reach_tensorflow():
  """bdrate and plot_rd read JSON and plot: none of the modules they reach imports TensorFlow."""
  graph, modules = import_graph(), project_modules()
  reached, todo = set(), ["common.bdrate", "common.plot_rd"]
  while todo:
    name = todo.pop()
    if name not in reached:
      reached.add(name)
      todo.extend(graph[name])
  for name in sorted(reached):
    tree = ast.parse(open(modules[name]).read())
    top_level = {alias.name.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in (node.names if isinstance(node, ast.Import)
                               else [ast.alias(node.module or "")])}
    assert "tensorflow" not in top_level, f"{name} (reached from bdrate/plot_rd) imports TF"
