"""How the parameters are split over the K parameter-server actors: the flat layout shared with the
sharded optimizer, distbp/parallel/flat.py (one segment of all parameters in registration order;
server k owns [N*k//K, N*(k+1)//K))."""
from distbp.parallel.flat import join_state, pieces, shard_ranges, split_state

__all__ = ["join_state", "pieces", "shard_ranges", "split_state"]
