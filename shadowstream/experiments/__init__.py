"""Async batch experiments: replay captured traffic or an eval set through challengers.

A run reads items from a source (:mod:`shadowstream.experiments.sources`), submits each as
a RequestEvent on ``<prefix>.batch.requests`` (tagged with the experiment id,
request id ``<experiment>:<source id>``, Kafka header ``shadow.challengers``)
plus its reference as the champion's ResponseEvent, and lets the ordinary
router, challenger workers and join compare them. Results land in the same
ClickHouse tables as live comparisons, under the experiment id.

* :mod:`shadowstream.experiments.runner` - submit a run (rate limit, in-flight window, resume)
* :mod:`shadowstream.experiments.store` - run metadata and submissions in ClickHouse
* :mod:`shadowstream.experiments.status` - submitted / answered / compared / failed per run
* :mod:`shadowstream.experiments.watcher` - results of a run as they arrive on Kafka
"""
