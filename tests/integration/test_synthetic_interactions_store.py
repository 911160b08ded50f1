"""Synthetic interactions written to MongoDB read back through the trainer's own reader with
the generator's histories, catalogue and categories."""

from __future__ import annotations

import uuid

import numpy as np
from pymongo import MongoClient

from bench.synthetic_interactions import (
    SyntheticSpec,
    category_name,
    generate,
    histories,
    item_id,
    user_id,
    write_to_mongo,
)
from models.recommender.own_data import read_store
from tests.support.stack import Stack


def test_written_store_reads_back_as_the_generated_histories(stack: Stack) -> None:
    spec = SyntheticSpec(n_items=300, n_users=120, n_interactions=2_500, seed=4)
    data = generate(spec)
    client: MongoClient[dict[str, object]] = MongoClient(stack.mongo_uri, tz_aware=True)
    database = client[f"synthetic_{uuid.uuid4().hex[:8]}"]
    try:
        write_to_mongo(database, data, batch=1_000)  # several bulk batches
        read = read_store(database)
    finally:
        client.drop_database(database.name)
        client.close()

    assert sorted(read.item_ids) == sorted(item_id(row) for row in range(spec.n_items))
    expected = {
        user_id(u): [item_id(int(i)) for i in h]
        for u, h in enumerate(histories(data, spec.n_users))
    }
    got = {
        user: [read.item_ids[int(row)] for row in rows]
        for user, rows in zip(read.users, read.histories, strict=True)
    }
    assert got == expected  # every interaction, in time order, per user
    row = read.item_ids.index(item_id(7))
    assert read.categories[row][0] == category_name(int(data.item_category[7]))
    interacted = set(np.unique(data.items).tolist())
    assert read.cold == {item_id(i) for i in range(spec.n_items) if i not in interacted}
