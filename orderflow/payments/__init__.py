"""Payments: the gateway client the saga's payment step calls, and a simulated gateway to test it.

The gateway is the one external, non-Kafka dependency of a saga step, so its HTTP boundary lives
here, apart from the agents: they see only :class:`~orderflow.payments.gateway.PaymentGateway`.
"""
