"""The C core's Python side: ``ccore`` owns cffi's ``ffi``/``lib``, ``backend`` wraps them as ``CBackend``."""
