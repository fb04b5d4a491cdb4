"""Shard membership (informer._sharding.membership) and the handoff barrier on the real
API server's Leases.

Several members run in one process with short timings, each with its own Handoff (no
controllers: nothing is in flight, so a member drains as soon as it adopts a view).
Conditions are awaited by polling the members or the API, bounded; assertions are about
order and cause (who is in whose view, which view was drained, what a lapse did), not
about how fast it happened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

from informer import NotFound, ShardMembershipLost
from informer._leaderelection.timings import LeaseTimings
from informer._rest.request import request_json
from informer._sharding.assignment import view_digest
from informer._sharding.handoff import Handoff
from informer._sharding.membership import Membership
from informer._sharding.records import (
    DRAINED_ANNOTATION,
    GROUP_LABEL,
    VIEW_ANNOTATION,
    lease_body,
    lease_name,
)
from informer.testing import ControlPlane, TcpProxy, eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

GROUP = "test-group"
POLL = 0.02
"""Seconds between two checks of a condition (``eventually``'s interval)."""
FAST: dict[str, float] = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.1}


def leases_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


class Member:
    """A Membership and its Handoff, run in their own cancel scope."""

    def __init__(self, api: Any, namespace: str, identity: str, **timings: float) -> None:
        self.identity = identity
        self.membership = Membership(
            api,
            group=GROUP,
            namespace=namespace,
            identity=identity,
            on_change=self._changed,
            timings=LeaseTimings(**(timings or FAST)),
        )
        self.handoff = Handoff(
            identity,
            publish=self.membership.publish,
            valid=lambda: self.membership.valid_for > 0,
        )
        self.scope = anyio.CancelScope()
        self.error: BaseException | None = None
        self.done = anyio.Event()
        self.work_cancelled = False
        self.views_cleared: list[tuple[str, ...]] = []

    def _changed(self) -> None:
        self.handoff.update(self.membership.members, self.membership.drained_of)
        self.membership.hurry = self.handoff.members is not None and not self.handoff.cleared
        members = self.handoff.members
        cleared = self.views_cleared
        if self.handoff.cleared and members is not None and (not cleared or cleared[-1] != members):
            cleared.append(members)

    async def _work(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.work_cancelled = True

    async def run(self) -> None:
        try:
            with self.scope:
                await self.membership.run(self._work)
        except ShardMembershipLost as exc:
            self.error = exc
        finally:
            self.done.set()

    def sees(self, *identities: str) -> bool:
        return self.membership.members == tuple(sorted(identities))

    def cleared(self, *identities: str) -> bool:
        return self.handoff.cleared and self.sees(*identities)


@asynccontextmanager
async def members(*started: Member) -> AsyncIterator[anyio.abc.TaskGroup]:
    async with anyio.create_task_group() as tg:
        for m in started:
            tg.start_soon(m.run)
        yield tg
        tg.cancel_scope.cancel()


async def get_lease(api: Any, namespace: str, identity: str) -> dict[str, Any]:
    return await request_json(api, "GET", leases_path(namespace, lease_name(GROUP, identity)))


async def test_join_barrier_release_and_collection(api_client: Any, namespace: str) -> None:
    a = Member(api_client, namespace, "a")
    b = Member(api_client, namespace, "b")
    async with members(a) as tg:
        # alone: nobody else has to drain
        await eventually(lambda: a.cleared("a"), interval=POLL)
        lease = await get_lease(api_client, namespace, "a")
        assert lease["metadata"]["labels"] == {GROUP_LABEL: GROUP}
        assert lease["spec"]["holderIdentity"] == "a"
        assert lease["spec"]["leaseDurationSeconds"] == 3
        alone = view_digest(["a"])
        await eventually(
            lambda: (
                a.membership._lease is not None
                and a.membership._lease["metadata"]["annotations"][DRAINED_ANNOTATION] == alone
            ),
            interval=POLL,
        )

        tg.start_soon(b.run)
        await eventually(lambda: a.cleared("a", "b") and b.cleared("a", "b"), interval=POLL)
        both = view_digest(["a", "b"])
        for who in ("a", "b"):
            annotations = (await get_lease(api_client, namespace, who))["metadata"]["annotations"]
            assert annotations[DRAINED_ANNOTATION] == both
            assert annotations[VIEW_ANNOTATION] == both
        # b adopted {a, b} first and cleared it only after a drained for it.
        assert b.views_cleared == [("a", "b")]
        assert a.views_cleared == [("a",), ("a", "b")]

        # A graceful stop: the work stops first, then the Lease is released; a drops b
        # at once (no wait for expiry).
        b.scope.cancel()
        await b.done.wait()
        assert b.work_cancelled and b.error is None
        released = await get_lease(api_client, namespace, "b")
        assert released["spec"]["holderIdentity"] == ""
        await eventually(
            lambda: a.cleared("a"), timeout=FAST["lease_duration"] - 0.5, interval=POLL
        )
        # The released Lease is collected a lease duration later.
        path = leases_path(namespace)

        async def collected() -> bool:
            items = (await request_json(api_client, "GET", path))["items"]
            return [i["metadata"]["name"] for i in items] == [lease_name(GROUP, "a")]

        await eventually(collected, timeout=FAST["lease_duration"] * 3, interval=POLL)
        assert a.handoff.rebalances == 2


async def test_release_after_a_renewal_it_did_not_see_still_releases(
    api_client: Any, namespace: str
) -> None:
    """A renewal cancelled in flight may have been applied by the server: the release's
    PUT at the older resourceVersion gets a 409; the Lease is read again and, still
    ours, released (not left to expire)."""
    a = Member(api_client, namespace, "a")
    async with members(a):
        await eventually(lambda: a.cleared("a"), interval=POLL)
        name = lease_name(GROUP, "a")
        # Someone (our own renewal, applied after we stopped waiting for it) changed it.
        await request_json(
            api_client,
            "PATCH",
            leases_path(namespace, name),
            body={"metadata": {"annotations": {"test/touched": "1"}}},
        )
        a.scope.cancel()  # its cached Lease (resourceVersion) is now stale
        with anyio.fail_after(5):
            await a.done.wait()
    assert a.error is None and a.work_cancelled
    released = await get_lease(api_client, namespace, "a")
    assert released["spec"]["holderIdentity"] == ""
    assert released["metadata"]["annotations"]["test/touched"] == "1"


async def test_a_deleted_lease_lapses_the_member(api_client: Any, namespace: str) -> None:
    a = Member(api_client, namespace, "a")
    async with members(a):
        await eventually(lambda: a.cleared("a"), interval=POLL)
        name = lease_name(GROUP, "a")
        await request_json(api_client, "DELETE", leases_path(namespace, name))
        with anyio.fail_after(5):
            await a.done.wait()
    assert isinstance(a.error, ShardMembershipLost), a.error
    assert "deleted" in str(a.error) and a.error.identity == "a"
    assert a.work_cancelled
    assert a.membership.members is None and a.handoff.members is None
    assert a.membership.lapsed_reason is not None


async def test_a_member_cut_off_lapses_before_the_others_drop_it(
    control_plane: ControlPlane, api_client: Any, namespace: str
) -> None:
    """b cannot reach the API server: it lapses (its own clock, renew deadline) before a
    judges its Lease expired (a's clock, lease duration after it last saw it change);
    a then works alone."""
    port = int(control_plane.host.rsplit(":", 1)[1])
    async with TcpProxy("127.0.0.1", port) as proxy, control_plane.api_client() as b_api:
        b_api.configuration.host = proxy.url
        a = Member(api_client, namespace, "a")
        b = Member(b_api, namespace, "b")
        lapsed_at: list[float] = []
        dropped_at: list[float] = []
        async with members(a, b):
            await eventually(lambda: a.cleared("a", "b") and b.cleared("a", "b"), interval=POLL)
            proxy.cut()
            t0 = anyio.current_time()

            async def watch_b() -> None:
                await b.done.wait()
                lapsed_at.append(anyio.current_time())

            async def watch_a() -> None:
                await eventually(lambda: a.sees("a"), timeout=30, interval=POLL)
                dropped_at.append(anyio.current_time())

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_b)
                tg.start_soon(watch_a)
            assert isinstance(b.error, ShardMembershipLost) and b.work_cancelled
            assert lapsed_at[0] < dropped_at[0]
            # a waited at least a lease duration after the cut minus one renewal period
            # (it may have seen b's last renewal that long before the cut).
            assert dropped_at[0] - t0 > FAST["lease_duration"] - FAST["retry_period"] - 0.1
            await eventually(lambda: a.cleared("a"), interval=POLL)
            lapse, drop = lapsed_at[0] - t0, dropped_at[0] - t0
            print(f"b lapsed {lapse:.2f}s and a dropped b {drop:.2f}s after the cut")


async def test_writes_that_leave_the_record_do_not_keep_a_dead_member(
    api_client: Any, namespace: str
) -> None:
    """A member that stopped renewing ("ghost") is dropped a lease duration after its
    record last changed, although someone keeps annotating its Lease (each write a new
    resourceVersion): expiry is judged on the record, as the leader elector judges it.
    Once dropped it stays dropped, and its Lease is collected."""
    body = lease_body(
        group=GROUP, namespace=namespace, identity="ghost", lease_seconds=3, drained="", view=""
    )
    await request_json(api_client, "POST", leases_path(namespace), body=body)
    name = lease_name(GROUP, "ghost")
    a = Member(api_client, namespace, "a")
    views: list[tuple[str, ...] | None] = []
    touches = 0

    async def annotate() -> None:
        nonlocal touches
        while True:
            patch = {"metadata": {"annotations": {"test/touched": str(touches)}}}
            try:
                await request_json(api_client, "PATCH", leases_path(namespace, name), body=patch)
            except NotFound:
                return  # collected
            touches += 1
            await anyio.sleep(FAST["retry_period"])

    async def gone() -> bool:
        items = (await request_json(api_client, "GET", leases_path(namespace)))["items"]
        return name not in {i["metadata"]["name"] for i in items}

    async with members(a) as tg:
        await eventually(lambda: a.sees("a", "ghost"), interval=POLL)
        tg.start_soon(annotate)
        changed = a.membership.on_change
        assert changed is not None

        def record_view() -> None:
            changed()
            views.append(a.membership.members)

        a.membership.on_change = record_view
        await eventually(lambda: a.cleared("a"), timeout=FAST["lease_duration"] * 3, interval=POLL)
        await eventually(gone, timeout=FAST["lease_duration"] * 3, interval=POLL)
    assert touches > FAST["lease_duration"] / FAST["retry_period"] / 2, touches
    dropped = views.index(("a",))
    assert ("a", "ghost") not in views[dropped:], views


async def test_an_identity_cannot_be_reused(api_client: Any, namespace: str) -> None:
    """A Lease left by an earlier run under the same identity: joining fails clearly
    (a member that stopped must never come back under its old name)."""
    from informer import ConfigError

    first = Member(api_client, namespace, "same")
    async with members(first):
        await eventually(lambda: first.cleared("same"), interval=POLL)
    again = Member(api_client, namespace, "same")
    with pytest.raises(ConfigError, match="already exists: identity 'same'"):
        await again.membership.run()
