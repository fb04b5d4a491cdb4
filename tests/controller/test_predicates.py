"""Predicates (informer.predicates) and FilteringHandler: controller-runtime's
``pkg/predicate`` (predicate.go: ``GenerationChangedPredicate``,
``LabelChangedPredicate``, ``AnnotationChangedPredicate``,
``ResourceVersionChangedPredicate``, ``And``/``Or``/``Not``, ``NewPredicateFuncs``) for
update-aware predicates; client-go's ``FilteringResourceEventHandler`` for plain
callables; and on the real server, a controller watching with ``generation_changed`` is
not reconciled by status writes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from crd_helpers import widgets

from informer import (
    Controller,
    DeletedFinalStateUnknown,
    FilteringHandler,
    HandlerFuncs,
    Manager,
    Obj,
    Resource,
    Result,
    own_key,
    request_json,
)
from informer._meta.finalizers import add_finalizer_patch, remove_finalizer_patch
from informer.predicates import (
    Predicate,
    UpdatePredicate,
    and_,
    annotations_changed,
    generation_changed,
    is_update_aware,
    labels_changed,
    not_,
    or_,
    resource_version_changed,
)

TIMEOUT = 30


def obj(
    gen: int = 1,
    rv: str = "1",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Obj:
    meta: dict[str, Any] = {"name": "w", "namespace": "ns", "generation": gen}
    meta["resourceVersion"] = rv
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta}


class Log:
    """A handler recording ``(event, resourceVersion)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def handler(self) -> HandlerFuncs:
        def rv(o: Any) -> str:
            target = o.obj if isinstance(o, DeletedFinalStateUnknown) else o
            return "?" if target is None else str(target["metadata"]["resourceVersion"])

        return HandlerFuncs(
            on_add=lambda o: self.events.append(("add", rv(o))),
            on_update=lambda old, new: self.events.append(("update", rv(new))),
            on_delete=lambda o: self.events.append(("delete", rv(o))),
        )


def run(predicate: Callable[[Obj], bool], *steps: tuple[str, Any]) -> list[tuple[str, str]]:
    log = Log()
    h = FilteringHandler(predicate, log.handler())
    for kind, arg in steps:
        if kind == "update":
            h.on_update(*arg)
        else:
            getattr(h, f"on_{kind}")(arg)
    return log.events


# -- the shipped predicates ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicate", "old", "new", "passes"),
    [
        (generation_changed, obj(gen=1, rv="1"), obj(gen=2, rv="2"), True),
        (generation_changed, obj(gen=1, rv="1"), obj(gen=1, rv="2"), False),
        (generation_changed, {"metadata": {}}, {"metadata": {}}, False),
        (labels_changed, obj(labels={"a": "1"}), obj(labels={"a": "2"}), True),
        (labels_changed, obj(labels={"a": "1"}), obj(labels={"a": "1"}, rv="2"), False),
        (labels_changed, obj(), obj(labels={}), False),
        (annotations_changed, obj(annotations={"a": "1"}), obj(), True),
        (annotations_changed, obj(annotations={}), obj(), False),
        (resource_version_changed, obj(rv="1"), obj(rv="2"), True),
        (resource_version_changed, obj(rv="1"), obj(rv="1"), False),
    ],
    ids=[
        "generation-bumped",
        "generation-same",
        "generation-absent",
        "label-value",
        "labels-same",
        "labels-absent-vs-empty",
        "annotation-removed",
        "annotations-empty-vs-absent",
        "rv-changed",
        "resync",
    ],
)
def test_update_predicates(predicate: Predicate, old: Obj, new: Obj, passes: bool) -> None:
    """Each ``...ChangedPredicate.Update``; adds and deletes always pass (embedded
    ``Funcs{}``); maps compare like Go's ``maps.Equal`` (nil == empty)."""
    assert predicate.update(old, new) is passes
    assert predicate(old) and predicate(new)
    assert isinstance(predicate, UpdatePredicate) and is_update_aware(predicate)


def test_combinators_apply_per_event_kind() -> None:
    """``And``/``Or``/``Not`` combine Create (here: the single-object call) and Update
    separately."""
    spec_or_labels = or_(generation_changed, labels_changed)
    assert spec_or_labels.update(obj(gen=1), obj(gen=2))
    assert spec_or_labels.update(obj(labels={"a": "1"}), obj(labels={"a": "2"}))
    assert not spec_or_labels.update(obj(rv="1"), obj(rv="2"))
    both = and_(generation_changed, labels_changed)
    assert not both.update(obj(gen=1), obj(gen=2))
    assert both.update(obj(gen=1), obj(gen=2, labels={"a": "1"}))
    status_only = and_(resource_version_changed, not_(generation_changed))
    assert status_only.update(obj(rv="1"), obj(rv="2"))
    assert not status_only.update(obj(rv="1"), obj(rv="2", gen=2))
    assert not not_(generation_changed)(obj())  # Not(Funcs{}).Create == false
    assert repr(status_only) == "and_(resource_version_changed, not_(generation_changed))"


def test_a_plain_callable_in_a_combinator_judges_the_new_object() -> None:
    """``NewPredicateFuncs(filter)``: Update applies the filter to ObjectNew."""

    def team(o: Obj) -> bool:
        return "team" in (o["metadata"].get("labels") or {})

    p = and_(team, generation_changed)
    assert p(obj(labels={"team": "a"})) and not p(obj())
    assert p.update(obj(gen=1), obj(gen=2, labels={"team": "a"}))
    assert not p.update(obj(gen=1, labels={"team": "a"}), obj(gen=2))


def test_combinator_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"or_\(\) needs at least one predicate"):
        or_()
    with pytest.raises(TypeError, match="callable"):
        and_(generation_changed, "generation")  # type: ignore[arg-type]


def test_a_subclass_overrides_what_it_needs() -> None:
    class ReplicasChanged(Predicate):
        def update(self, old: Obj, new: Obj) -> bool:
            return bool(old["spec"]["replicas"] != new["spec"]["replicas"])

    p = ReplicasChanged()
    assert p({}) and p.update({"spec": {"replicas": 1}}, {"spec": {"replicas": 2}})
    assert Predicate().update({}, {}) and Predicate()({})


# -- FilteringHandler -----------------------------------------------------------------------


def test_plain_callable_keeps_client_go_semantics() -> None:
    """``FilteringResourceEventHandler``: crossing the boundary becomes add / delete."""

    def labelled(o: Obj) -> bool:
        return bool(o["metadata"].get("labels"))

    a, b, c = obj(rv="1", labels={"x": "1"}), obj(rv="2"), obj(rv="3", labels={"x": "1"})
    events = run(
        labelled,
        ("add", a),
        ("update", (a, b)),  # stops matching: delete(old)
        ("update", (b, b)),  # neither: nothing
        ("update", (b, c)),  # starts matching: add(new)
        ("update", (c, c)),  # both: update
        ("delete", b),
        ("delete", c),
    )
    assert events == [
        ("add", "1"),
        ("delete", "1"),
        ("add", "3"),
        ("update", "3"),
        ("delete", "3"),
    ]


def test_update_aware_predicate_drops_rejected_updates() -> None:
    """controller-runtime: a rejected Update event is dropped, never turned into a
    delete; creates and deletes go through the single-object call."""
    v1, v1_status, v2 = obj(gen=1, rv="1"), obj(gen=1, rv="2"), obj(gen=2, rv="3")
    events = run(
        generation_changed,
        ("add", v1),
        ("update", (v1, v1_status)),  # status write: dropped
        ("update", (v1_status, v1_status)),  # resync: dropped
        ("update", (v1_status, v2)),  # spec change: passes
        ("delete", v2),
    )
    assert events == [("add", "1"), ("update", "3"), ("delete", "3")]


def test_update_aware_predicate_sees_unwrapped_tombstones() -> None:
    seen: list[Obj] = []

    class Recording(Predicate):
        def __call__(self, o: Obj) -> bool:
            seen.append(o)
            return True

    last = obj(rv="9")
    events = run(
        Recording(),
        ("delete", DeletedFinalStateUnknown("ns/w", last)),
        ("delete", DeletedFinalStateUnknown("ns/w", None)),  # no state: never passes
    )
    assert events == [("delete", "9")] and seen == [last]


def test_update_aware_is_decided_at_construction() -> None:
    """A callable whose ``update`` attribute is not callable is a plain predicate."""

    class NotAware:
        update = "not callable"

        def __call__(self, o: Obj) -> bool:
            return o["metadata"]["resourceVersion"] != "2"

    events = run(NotAware(), ("update", (obj(rv="1"), obj(rv="2"))))
    assert events == [("delete", "1")]  # plain semantics: stopped matching
    assert "generation_changed" in repr(FilteringHandler(generation_changed, Log().handler()))
    with pytest.raises(TypeError, match="callable"):
        FilteringHandler("nope", Log().handler())  # type: ignore[arg-type]


# -- on the real server ---------------------------------------------------------------------


class Observed:
    """Resource versions a controller's mapper saw (events that passed the predicate)
    and the generations it reconciled; awaitable."""

    def __init__(self) -> None:
        self.mapped: list[str] = []
        self.reconciled: list[int] = []
        self._changed = anyio.Event()

    def note(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def until_noted(self, check: Callable[[], bool]) -> None:
        """Return once ``check()`` holds, checking it again at each ``note()``."""
        while not check():
            await self._changed.wait()


def widget_watcher(
    resource: Resource, observed: Observed, predicate: Callable[[Obj], bool] | None, name: str
) -> type[Controller]:
    class WidgetWatcher(Controller):
        def setup(self) -> None:
            def mapper(o: Obj) -> list[str]:
                observed.mapped.append(o["metadata"]["resourceVersion"])
                observed.note()
                return own_key(o)

            self.widgets = self.watch(resource, mapper=mapper, predicate=predicate)

        async def reconcile(self, key: str) -> Result | None:
            ns, _, name = key.partition("/")
            current = self.widgets.lister().get(name, namespace=ns)
            if current is not None:
                observed.reconciled.append(current["metadata"]["generation"])
                observed.note()
            return None

    WidgetWatcher.name = name
    return WidgetWatcher


@pytest.mark.anyio
async def test_generation_changed_ignores_status_writes(api_client: Any, namespace: str) -> None:
    """GenerationChangedPredicate on a custom resource with a status subresource: a
    status write (new resourceVersion, same generation) reaches the unfiltered
    controller but never the filtered one; a spec write and a deletion request on an
    object with a finalizer (the server bumps generation for both) reach both.

    Deterministic, no sleeps: a listener receives one informer's events in order, so
    once the filtered controller mapped the spec write it has judged the status write.
    """
    filtered, unfiltered = Observed(), Observed()
    with anyio.fail_after(TIMEOUT):
        async with widgets(api_client, namespace) as resource:
            path = resource.path("w", namespace=namespace)
            body = {"apiVersion": resource.api_version, "kind": "Widget"}
            await request_json(
                api_client,
                "POST",
                resource.path(namespace=namespace),
                body={**body, "metadata": {"name": "w"}, "spec": {"size": 1}},
            )
            manager = Manager(api_client, namespaces=[namespace])
            manager.add(widget_watcher(resource, filtered, generation_changed, "filtered"))
            manager.add(widget_watcher(resource, unfiltered, None, "unfiltered"))
            async with manager:
                await filtered.until_noted(lambda: filtered.reconciled == [1])
                await unfiltered.until_noted(lambda: unfiltered.reconciled == [1])

                current = await request_json(api_client, "GET", path)
                status = copy.deepcopy(current)
                status["status"] = {"conditions": []}
                written = await request_json(api_client, "PUT", f"{path}/status", body=status)
                status_rv = written["metadata"]["resourceVersion"]
                assert written["metadata"]["generation"] == 1

                spec = await request_json(api_client, "PATCH", path, body={"spec": {"size": 2}})
                assert spec["metadata"]["generation"] == 2
                spec_rv = spec["metadata"]["resourceVersion"]
                # The mapper runs on the new and the old object of an update, so the
                # status write's version is mapped once as the old side of the spec
                # update; had the status update passed, its new side would count too.
                await unfiltered.until_noted(lambda: spec_rv in unfiltered.mapped)
                assert unfiltered.mapped.count(status_rv) == 2
                await filtered.until_noted(lambda: spec_rv in filtered.mapped)
                assert filtered.mapped.count(status_rv) == 1
                await filtered.until_noted(lambda: filtered.reconciled[-1:] == [2])

                held = add_finalizer_patch(spec, "example.com/hold")
                assert held is not None
                held_rv = (await request_json(api_client, "PATCH", path, body=held))["metadata"][
                    "resourceVersion"
                ]
                await request_json(api_client, "DELETE", path)
                deleting = await request_json(api_client, "GET", path)
                assert deleting["metadata"]["generation"] == 3  # bumped by the delete
                deleting_rv = deleting["metadata"]["resourceVersion"]
                await filtered.until_noted(lambda: deleting_rv in filtered.mapped)
                await unfiltered.until_noted(lambda: deleting_rv in unfiltered.mapped)
                # The finalizer patch changed metadata only (same generation): dropped.
                assert (filtered.mapped.count(held_rv), unfiltered.mapped.count(held_rv)) == (1, 2)
                await filtered.until_noted(lambda: filtered.reconciled[-1:] == [3])
                release = remove_finalizer_patch(deleting, "example.com/hold")
                await request_json(api_client, "PATCH", path, body=release)
