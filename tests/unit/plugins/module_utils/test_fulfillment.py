"""Unit tests for plugins/module_utils/fulfillment.py: what publishing writes, compared field by field."""

from __future__ import annotations

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.fulfillment import FulfillmentError, publish


class Recorder:
    """A templates endpoint in memory that records every write (the real one is tests/stack/fulfillment.py)."""

    def __init__(self, items):
        self.items = dict((item["id"], item) for item in items)
        self.writes = []

    def templates(self):
        return dict(self.items)

    def create(self, template):
        self.writes.append(("POST", template["id"]))
        self.items[template["id"]] = dict(template)

    def update(self, template):
        self.writes.append(("PATCH", template["id"]))
        self.items[template["id"]].update(template)


ONE = {"id": "a.b.one", "title": "One", "description": "", "parameters": []}
TWO = {"id": "a.b.two", "title": "Two", "description": "", "parameters": [{"name": "x", "type": "t", "required": True}]}


def test_creates_missing_updates_different_and_leaves_the_same():
    service = Recorder([dict(ONE, metadata={"creation_timestamp": "then"}), dict(TWO, title="Old")])
    result = publish(service, [ONE, TWO, dict(ONE, id="a.b.three")])
    assert service.writes == [("PATCH", "a.b.two"), ("POST", "a.b.three")]
    assert (result["created"], result["updated"], result["unchanged"], result["changed"]) == (["a.b.three"], ["a.b.two"], ["a.b.one"], True)
    assert result["diff"][0]["before"]["title"] == "Old" and result["diff"][0]["after"]["title"] == "Two"
    again = publish(service, [ONE, TWO, dict(ONE, id="a.b.three")])
    assert len(service.writes) == 2 and not again["changed"] and again["unchanged"] == ["a.b.one", "a.b.two", "a.b.three"]


def test_check_mode_writes_nothing():
    service = Recorder([])
    result = publish(service, [ONE], check_mode=True)
    assert service.writes == [] and result["created"] == ["a.b.one"] and result["changed"]


def test_errors_surface():
    class Down(Recorder):
        def templates(self):
            raise FulfillmentError("GET x: HTTP 503", 503)

    with pytest.raises(FulfillmentError, match="503"):
        publish(Down([]), [ONE])
