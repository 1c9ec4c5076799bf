"""The on-disk store: the only layer that knows the folder layout.

Every function here takes paths and plain values; nothing here knows about "active" runs or qlib's
decision tables (that is :mod:`tracklite.api`).
"""
