"""service.db's statement helpers, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.engine.interfaces import CacheStats

from service.db import among

_table = Table("among_things", MetaData(), Column("id", BigInteger, primary_key=True), Column("name", String(16)))
_BY_IDS = select(_table.c.name).where(among(_table.c.id, "ids")).order_by(_table.c.id)
_BY_NAMES = select(_table.c.id).where(among(_table.c.name, "names")).order_by(_table.c.id)


def test_among_takes_lists_of_any_length_in_one_statement(database_url):
    engine = create_engine(database_url)
    _table.create(engine)
    try:
        with engine.begin() as connection:
            connection.execute(insert(_table), [{"id": i, "name": f"n{i}"} for i in range(1, 21)])
            hits = []
            for ids in ([], [3], [1, 2, 5], list(range(1, 30))):
                result = connection.execute(_BY_IDS, {"ids": ids})
                hits.append(result.context.cache_hit)
                assert result.scalars().all() == [f"n{i}" for i in ids if i <= 20]
            assert connection.execute(_BY_NAMES, {"names": ["n4", "n9", "x"]}).scalars().all() == [4, 9]
        assert hits[1:] == [CacheStats.CACHE_HIT] * 3
        if engine.dialect.name == "postgresql":
            assert "= ANY (" in str(_BY_IDS.compile(engine))
    finally:
        _table.drop(engine)
        engine.dispose()
