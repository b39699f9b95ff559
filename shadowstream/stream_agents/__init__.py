"""Stream agents: the router (fan-out + join) and the challenger workers.

They run inside a Faust worker process (see shadowstream.pipeline.app); the data
plane consumes and produces in batches with confluent-kafka.
"""
