import pytest

from tiercel.expr import truthy


@pytest.mark.parametrize("value", ["false", "FALSE", " False ", "0", "-0", "", "   ", False, 0, 0.0, -0.0, None,
                                   [], {}, (), set()])
def test_falsy(value):
    assert truthy(value) is False


@pytest.mark.parametrize("value", ["true", "no", "off", "0.0", "00", "1", "x", " a ", True, 1, -1, 0.1, [0], {"a": 0},
                                   ("",), object()])
def test_truthy(value):
    assert truthy(value) is True


def test_rendered_conditions(renderer):
    variables = {"inputs": {"n": 3, "s": "false"}}
    assert truthy(renderer.render("{{ inputs.n > 2 }}", variables)) is True
    assert truthy(renderer.render("{{ inputs.s }}", variables)) is False
    assert truthy(renderer.render("x{{ inputs.n > 5 }}", variables)) is True
    assert truthy(renderer.render("{{ inputs.n > 5 }}", variables)) is False
