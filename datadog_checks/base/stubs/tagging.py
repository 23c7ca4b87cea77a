"""A stand-in for the host's ``tagger`` module: tags are whatever a test set."""

from __future__ import annotations

LOW, ORCHESTRATOR, HIGH = 0, 1, 2


class TaggerStub:
    LOW, ORCHESTRATOR, HIGH = LOW, ORCHESTRATOR, HIGH

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._tags: dict[tuple[str, int], list[str]] = {}

    def set_tags(self, entity: str, cardinality: int, tags: list[str]) -> None:
        self._tags[(entity, cardinality)] = list(tags)

    def tag(self, entity: str, cardinality: int) -> list[str]:
        return list(self._tags.get((entity, cardinality), []))

    def get_tags(self, entity: str, high_card: bool) -> list[str]:
        return self.tag(entity, HIGH if high_card else LOW)


tagger = TaggerStub()
