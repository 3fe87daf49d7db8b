"""``orderflow loadgen``: open-loop load against running workers, outcomes read from Kafka.

Orders are sent at scheduled times whatever the answers (open loop: a slow platform does not
slow the offered load down), round-robin over the workers' URLs. Each accepted order (a 202)
is followed on ``orders.events`` until its outcome, so latency is measured from the 202 to the
moment the outcome event is read, without polling the API.

- :mod:`~orderflow.loadgen.plan`: what to send and when (pure).
- :mod:`~orderflow.loadgen.stats`: percentiles and the report (pure).
- :mod:`~orderflow.loadgen.search`: the ``--find-max`` search over rates (pure).
- :mod:`~orderflow.loadgen.watcher`: the orders.events reader.
- :mod:`~orderflow.loadgen.runner`: stocking, sending, cancelling, the progress line.
- :mod:`~orderflow.loadgen.cli`: the command.
"""
