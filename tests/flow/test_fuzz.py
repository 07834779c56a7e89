"""Property-based tests: whatever the input, load_flow returns a Flow or raises FlowValidationError."""

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiercel.flow import Flow, FlowValidationError, load_flow

HERE = Path(__file__).parent
VALID = yaml.safe_load((HERE / "flows" / "valid.yaml").read_text())
WORDS = ["id", "namespace", "type", "tasks", "then", "else", "cases", "task", "dependsOn", "inputs", "defaults",
         "values", "message", "duration", "retry", "maxAttempt", "labels", "key", "value", "triggers", "outputs",
         "concurrency", "limit", "pluginDefaults", "forced", "finally", "errors", "test.Log", "test.Sequential",
         "test.Dag", "test.Switch", "test.If", "test.Wrap", "core.Log", "core.Dag", "core.Sequential", "STRING",
         "INT", "FILE", "ARRAY", "itemType", "{{ x }}", "PT1S", "validator", "min", "max", "[", "a"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.sampled_from(WORDS), st.text(max_size=8))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=5)), children, max_size=5)),
    max_leaves=30)


def check(text, registry):
    try:
        result = load_flow(text, "fuzz.yaml", registry=registry)
    except FlowValidationError as exc:
        assert exc.errors and all(e.message for e in exc.errors)
        str(exc)
        [e.to_json() for e in exc.errors]
    else:
        assert isinstance(result, Flow)
        list(result.walk())


FUZZ = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 150)), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.text(max_size=200))
def test_random_text(registry, text):
    check(text, registry)


@FUZZ
@given(documents)
def test_random_yaml_documents(registry, doc):
    check(yaml.safe_dump(doc), registry)


@FUZZ
@given(st.dictionaries(st.sampled_from(["id", "namespace", "tasks", "inputs", "triggers", "labels"]), documents))
def test_random_flow_shaped_documents(registry, doc):
    check(yaml.safe_dump({"id": "f", "namespace": "n", **doc}), registry)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


ALL_PATHS = [p for p in _paths(VALID) if p]


def _mutate(doc, path, action, junk):
    import copy

    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = junk
    elif action == "rename" and isinstance(parent, dict):
        parent[f"{last}x"] = parent.pop(last)
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    return doc


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["delete", "replace", "rename", "duplicate"]),
                          documents), min_size=1, max_size=3))
def test_mutations_of_a_valid_flow(registry, mutations):
    doc = VALID
    for path, action, junk in mutations:
        try:
            doc = _mutate(doc, path, action, junk)
        except (KeyError, IndexError, TypeError):
            continue
    check(yaml.safe_dump(doc, sort_keys=False), registry)


@FUZZ
@given(st.sampled_from(ALL_PATHS), st.integers(0, 40), st.text(max_size=3))
def test_text_edits_of_a_valid_flow(registry, _path, cut, insert):
    text = (HERE / "flows" / "valid.yaml").read_text()
    lines = text.splitlines(keepends=True)
    i = cut % len(lines)
    lines[i] = lines[i][: len(lines[i]) // 2] + insert + lines[i][len(lines[i]) // 2:]
    check("".join(lines), registry)


def _core_examples():
    from tiercel.plugins import get_registry

    registry = get_registry()
    docs = []
    for component in registry.components():
        for example in component.cls.examples:
            try:  # a broken example is the registry conformance suite's finding, not this test's
                docs.append(yaml.safe_load(example.flow))
            except yaml.YAMLError:
                pass
    return registry, [d for d in docs if isinstance(d, dict)]


CORE_REGISTRY, CORE_EXAMPLES = _core_examples()


def _unexpected(exc: FlowValidationError) -> list[str]:
    return [e.message for e in exc.errors if e.message.startswith(("cannot validate flow", "the flow is nested"))
            or "invalid task: " in e.message or "invalid trigger: " in e.message]


@FUZZ
@given(st.data())
def test_mutations_of_installed_examples(data):
    doc = data.draw(st.sampled_from(CORE_EXAMPLES))
    paths = [p for p in _paths(doc) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["delete", "replace", "rename", "duplicate"]))
        try:
            doc = _mutate(doc, path, action, data.draw(documents))
        except (KeyError, IndexError, TypeError):
            continue
    try:
        load_flow(yaml.safe_dump(doc, sort_keys=False), "fuzz.yaml", registry=CORE_REGISTRY)
    except FlowValidationError as exc:
        assert not _unexpected(exc), "a component validator raised something other than ValueError"
