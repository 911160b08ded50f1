"""Catalogue texts, embedding and the genre-precision relevance check."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.recommender.data import Catalogue

# Descriptive queries that avoid the genre's own name, with the genre that counts as
# relevant. Titles+genres are what is embedded, so this checks semantic matching.
GENRE_QUERIES: list[tuple[str, str]] = [
    ("a scary film with monsters and ghosts", "Horror"),
    ("a funny movie that makes you laugh", "Comedy"),
    ("spaceships, aliens and the future", "Sci-Fi"),
    ("a love story about a couple", "Romance"),
    ("soldiers fighting in a battle", "War"),
    ("a cartoon for kids", "Animation"),
    ("gangsters, police and a heist", "Crime"),
    ("cowboys in the wild west", "Western"),
    ("a show with singing and dancing", "Musical"),
    ("a true story filmed about real people", "Documentary"),
    ("suspense and a killer on the loose", "Thriller"),
    ("explosions, car chases and fights", "Action"),
]


def item_text(title: str, year: str, genres: Sequence[str]) -> str:
    """What gets embedded for a movie (events may send any ``title``/``genres``)."""
    head = f"{title} ({year})" if year else title
    return f"{head}. Genres: {', '.join(genres)}." if genres else head


def catalogue_texts(catalogue: Catalogue) -> list[str]:
    return [
        item_text(t, y, g)
        for t, y, g in zip(catalogue.titles, catalogue.years, catalogue.genres, strict=True)
    ]


def genre_precision(
    top_rows: np.ndarray, catalogue: Catalogue, k: int = 10
) -> list[dict[str, object]]:
    """Per query: precision@k of the wanted genre vs. its share of the catalogue."""
    rows = []
    for (query, genre), top in zip(GENRE_QUERIES, top_rows, strict=True):
        hits = [genre in catalogue.genres[int(r)] for r in top[:k]]
        share = float(np.mean([genre in g for g in catalogue.genres]))
        rows.append(
            {
                "query": query,
                "genre": genre,
                f"precision@{k}": float(np.mean(hits)),
                "random baseline": share,
            }
        )
    return rows
