"""Negatives shared per chunk (PyTorch-BigGraph's trick).

Every chunk of positives shares one set of corrupted tweets and one set of corrupted users, so
scoring the chunk is a matrix product ``[chunk, d] x [d, negatives]`` rather than a gather per
negative. Each set mixes nodes drawn uniformly with nodes drawn in proportion to their degree
(prevalence) in the training edges; the latter is exactly "the endpoint of a uniformly drawn
training edge", which needs no alias table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ChunkNegatives:
    tweets: torch.Tensor  # int64 [n_chunks, tweet_negatives]: corrupt the tweet of every positive in the chunk
    users: torch.Tensor  # int64 [n_chunks, user_negatives]: corrupt the user


def split_count(n: int, degree_fraction: float) -> tuple[int, int]:
    """(uniform, degree-proportional) counts of ``n`` negatives."""
    n_degree = int(round(n * degree_fraction))
    return n - n_degree, n_degree


class NegativeSampler:
    """Draws :class:`ChunkNegatives` from a seeded ``torch.Generator``."""

    def __init__(self, num_users: int, num_tweets: int, train_users: np.ndarray, train_tweets: np.ndarray,
                 tweet_negatives: int, user_negatives: int, degree_fraction: float):
        self.num_users = int(num_users)
        self.num_tweets = int(num_tweets)
        # the training edges' endpoints, as given (no copy: e.g. int32 column views of PackedEdges)
        self.train_users = torch.from_numpy(np.asarray(train_users))
        self.train_tweets = torch.from_numpy(np.asarray(train_tweets))
        self.tweet_split = split_count(tweet_negatives, degree_fraction)
        self.user_split = split_count(user_negatives, degree_fraction)

    def _draw(self, n_chunks: int, num_nodes: int, endpoints: torch.Tensor, split, gen: torch.Generator) -> torch.Tensor:
        n_uniform, n_degree = split
        uniform = torch.randint(0, num_nodes, (n_chunks, n_uniform), generator=gen)
        edge = torch.randint(0, len(endpoints), (n_chunks, n_degree), generator=gen)
        return torch.cat([uniform, endpoints[edge].to(torch.int64)], dim=1)

    def sample(self, n_chunks: int, gen: torch.Generator) -> ChunkNegatives:
        tweets = self._draw(n_chunks, self.num_tweets, self.train_tweets, self.tweet_split, gen)
        users = self._draw(n_chunks, self.num_users, self.train_users, self.user_split, gen)
        return ChunkNegatives(tweets=tweets, users=users)
