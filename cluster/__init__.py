"""Ray and the command line: the only package that knows Ray.

``driver`` starts or joins Ray, creates the archive and keeps one ``actor`` per shard busy (each
holds a ``sampler.shard.ShardRunner``); ``cli`` is ``sgdthermo run | resume | status | analyze |
report``, which validates input before Ray starts; ``progress`` prints the shard table.
"""
