"""Cost of rendering expressions with a warm cache (run: python tests/bench/bench_expr.py).

Prints microseconds per call; the engine renders every property of every task run, so a
cached simple template must cost microseconds, not milliseconds.
"""

from __future__ import annotations

import time
import timeit

from tiercel.expr import Renderer

VARIABLES = {
    "flow": {"id": "hello", "namespace": "company.team", "revision": 1},
    "execution": {"id": "6Hq3Zk", "startDate": "2026-01-01T00:00:00Z"},
    "inputs": {"name": "world", "n": 3, "optional": None},
    "vars": {"greeting": "Hello"},
    "outputs": {f"task{i}": {"value": i, "rows": list(range(10))} for i in range(50)},
    "labels": {"env": "dev"},
}

CASES = {
    "literal (fast path)": "just text, no expression",
    "native {{ outputs.task7.value }}": "{{ outputs.task7.value }}",
    "text {{ vars.greeting }}, {{ inputs.name }}": "{{ vars.greeting }}, {{ inputs.name }}!",
    "arithmetic {{ inputs.n * 2 + 1 }}": "{{ inputs.n * 2 + 1 }}",
    "coalesce {{ inputs.optional ?? 'x' }}": "{{ inputs.optional ?? 'x' }}",
    "filter {{ outputs.task3.rows | toJson }}": "{{ outputs.task3.rows | toJson }}",
    "loop {% for r in outputs.task3.rows %}": "{% for r in outputs.task3.rows %}{{ r }},{% endfor %}",
}


def per_call_us(func, number: int) -> float:
    # CPU time of this process, best of 5: stable on a busy machine
    best = min(timeit.repeat(func, number=number, repeat=5, timer=time.process_time))
    return best / number * 1e6


def main() -> None:
    renderer = Renderer()
    print(f"{'case':48} {'µs/render':>10}")
    for name, source in CASES.items():
        renderer.render(source, VARIABLES)  # warm the cache
        print(f"{name:48} {per_call_us(lambda s=source: renderer.render(s, VARIABLES), 20_000):10.2f}")
    label = "evaluate('inputs.n > 2')"
    print(f"{label:48} {per_call_us(lambda: renderer.evaluate('inputs.n > 2', VARIABLES), 20_000):10.2f}")
    cold = Renderer()
    sources = [f"{{{{ inputs.n + {i} }}}}" for i in range(500)]
    total = timeit.timeit(lambda: [cold.render(s, VARIABLES) for s in sources], number=1, timer=time.process_time)
    print(f"{'first render (compile), per template':48} {total / len(sources) * 1e6:10.2f}")
    props = {"message": "{{ vars.greeting }}, {{ inputs.name }}", "count": "{{ inputs.n }}",
             "headers": {"X-Flow": "{{ flow.id }}", "X-Env": "{{ labels.env }}"}, "static": ["a", "b"]}
    print(f"{'a task with 5 properties (dict)':48} "
          f"{per_call_us(lambda: renderer.render(props, VARIABLES), 10_000):10.2f}")


if __name__ == "__main__":
    main()
