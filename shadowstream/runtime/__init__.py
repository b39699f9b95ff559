"""The agents' host: a batched data-plane service inside a Faust worker, Kafka I/O
in batches, counter reports, worker threads and memory readings."""
