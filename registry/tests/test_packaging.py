"""Packaging checks on fixture distributions: each broken one fails exactly the check it breaks."""

import pytest

from tiercel_registry import packaging
from tiercel_registry.checks import CheckFailed, CheckSkipped

CASES = [
    ("tiercel-good", {}),
    ("hello-tiercel", {"name": "should be named `tiercel-<id>`"}),
    ("tiercel-noep", {"entry_point": "no entry point in group `tiercel`; add to pyproject.toml"}),
    ("tiercel-wrongep", {"entry_point": "the entry point is named `other`, expected `wrongep`"}),
    ("tiercel-noapi", {"api": 'declares no kernel API range; add `TIERCEL_API = ">=1.0,<2"`'}),
    ("tiercel-oldapi", {"api": "excludes this kernel's API 1.0"}),
    ("tiercel-noversion", {"version": "is not set or not valid"}),
    ("tiercel-noreadme", {"readme": "no README: add README.md"}),
    ("tiercel-nochangelog", {"changelog": "no CHANGELOG: add CHANGELOG.md"}),
    ("tiercel-broken", {"loads": "cannot import tiercel_broken.plugin: ModuleNotFoundError"}),
]


@pytest.mark.parametrize("dist,expected", CASES, ids=[c[0] for c in CASES])
def test_each_broken_distribution_fails_exactly_its_check(dists, dist, expected):
    failed = {}
    for check in packaging.CHECKS:
        try:
            packaging.run_packaging_check(check, dist)
        except CheckFailed as exc:
            failed[check] = str(exc)
        except CheckSkipped:
            pass
    assert set(failed) == set(expected), failed
    for check, fragment in expected.items():
        assert fragment in failed[check]


def test_the_kernel_passes_as_the_core_plugin():
    for check in packaging.CHECKS:
        packaging.run_packaging_check(check, "tiercel")


def test_not_installed_says_how_to_install():
    with pytest.raises(packaging.NotInstalled, match="pip install"):
        packaging.load("tiercel-nowhere")
