"""Who is calling, and what they may do: bearer tokens (JWT), roles, and rate limits per client.

``tokens`` verifies and mints JWTs, ``principal`` is the identity a verified token stands for,
``ratelimit`` keeps a token bucket per client, ``forwarding`` signs the requests one worker
forwards to the owner of a key, and ``guard`` puts them together from the settings.
"""
