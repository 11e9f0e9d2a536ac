"""The harness around the library: demos, the Janus SFU harness, test and benchmark drivers.

Nothing in :mod:`orange_fast.sframe`, :mod:`orange_fast.mls`, :mod:`orange_fast.session`,
:mod:`orange_fast.delivery` or :mod:`orange_fast.rtc` imports this package; it is shipped
so that ``orange-fast call`` and the multi-process tests run from an installed wheel.
"""
