"""The unit of work's modes: transactional, read-only, single write; connections taken lazily."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import event

from domain.model import ApiClient, Role
from domain.ports import NewApiClient
from infra.database import make_engine
from infra.unit_of_work import SqlDatabase
from tests.conftest import create_sqlite_database


def new_client() -> NewApiClient:
    ident = uuid.uuid4()
    return NewApiClient(ApiClient(ident, "c", Role.CLIENT), ident.hex, "whsec_x")


def run(database_url: str, scenario: object) -> None:
    async def go() -> None:
        db = SqlDatabase(make_engine(database_url, 2))
        try:
            await scenario(db)  # type: ignore[operator]
        finally:
            await db.dispose()

    asyncio.run(go())


def test_single_write_commits_by_itself_and_refuses_a_second(tmp_path: Path) -> None:
    url = create_sqlite_database(tmp_path).url
    first, second = new_client(), new_client()

    async def scenario(db: SqlDatabase) -> None:
        async with db.single_writer() as uow:
            await uow.clients.add(first)
            with pytest.raises(RuntimeError, match="second write"):
                await uow.clients.add(second)
            await uow.commit()
        async with db.reader() as uow:
            assert await uow.clients.by_key_hash(first.key_hash) is not None
            assert await uow.clients.by_key_hash(second.key_hash) is None

    run(url, scenario)


def test_transactional_unit_rolls_back_what_it_did_not_commit(tmp_path: Path) -> None:
    url = create_sqlite_database(tmp_path).url
    kept, dropped = new_client(), new_client()

    async def scenario(db: SqlDatabase) -> None:
        async with db.unit_of_work() as uow:
            await uow.clients.add(kept)
            await uow.commit()
        async with db.unit_of_work() as uow:
            await uow.clients.add(dropped)
        async with db.reader() as uow:
            assert await uow.clients.by_key_hash(kept.key_hash) is not None
            assert await uow.clients.by_key_hash(dropped.key_hash) is None

    run(url, scenario)


def test_reader_cannot_commit_and_effects_wait_for_commit(tmp_path: Path) -> None:
    url = create_sqlite_database(tmp_path).url
    ran: list[str] = []

    async def effect() -> None:
        ran.append("effect")

    async def scenario(db: SqlDatabase) -> None:
        async with db.reader() as uow:
            with pytest.raises(RuntimeError, match="read-only"):
                await uow.commit()
        async with db.unit_of_work() as uow:
            uow.after_commit(effect)  # dropped: never committed
        assert ran == []
        async with db.unit_of_work() as uow:
            uow.after_commit(effect)
            await uow.clients.add(new_client())
            await uow.commit()
            assert ran == []  # not while the connection is still held
        assert ran == ["effect"]

    run(url, scenario)


def test_a_unit_that_runs_no_statement_takes_no_connection(tmp_path: Path) -> None:
    url = create_sqlite_database(tmp_path).url

    checkouts: list[object] = []

    async def scenario(db: SqlDatabase) -> None:
        event.listen(db.engine.sync_engine, "checkout", lambda *_: checkouts.append(1))
        async with db.unit_of_work():
            assert checkouts == []
        async with db.reader() as uow:
            await uow.clients.by_key_hash("nothing")
        assert len(checkouts) == 1

    run(url, scenario)
