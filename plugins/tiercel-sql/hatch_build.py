"""Build hook: teaches hatchling the `Framework :: Tiercel` classifier, which is not on PyPI's list.

Hatchling refuses unknown classifiers unless a metadata hook declares them; a hook only
runs when a field is dynamic, so it also sets the keywords.
"""

from hatchling.metadata.plugin.interface import MetadataHookInterface


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata: dict) -> None:
        metadata["keywords"] = ["tiercel", "tiercel-plugin", "orchestration"]

    def get_known_classifiers(self) -> list[str]:
        return ["Framework :: Tiercel"]
