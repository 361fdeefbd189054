"""Monitoring: data and prediction drift, performance once labels arrive,
monitoring records over time, alerts and HTML reports.

>>> import keel
>>> result = keel.drift(reference_frame, current_frame)
>>> result.to_frame()          # one row per feature
>>> result.share_drifted, result.drifted

Monitoring only reads: the inference log through serving's reader, dataset
versions through ``keel.data``. What it writes is its own records.
"""
