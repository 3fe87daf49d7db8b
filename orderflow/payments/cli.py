"""``orderflow payment-sim``: run the simulated payment gateway until SIGINT or SIGTERM.

It stops cleanly on either signal (exit status 0), as a process manager or a test harness
stops it with SIGTERM and treats any other status as a crash.
"""

from __future__ import annotations

import asyncio
import signal

import click

from orderflow.payments.simulator import SimulatorConfig, running

_DEFAULTS = SimulatorConfig()
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@click.command("payment-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    default=7070,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The port to listen on (0: any free port; the URL printed names it).",
)
@click.option(
    "--decline-over",
    default=_DEFAULTS.decline_over,
    show_default=True,
    type=click.IntRange(min=0),
    help="Decline (amount_over_limit) amounts above this, in minor units.",
)
@click.option(
    "--failure-rate",
    default=_DEFAULTS.failure_rate,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="The fraction of authorizations answered 503.",
)
@click.option(
    "--latency-ms",
    default=_DEFAULTS.latency_ms,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Milliseconds every request waits before it is answered.",
)
@click.option(
    "--seed",
    default=_DEFAULTS.seed,
    show_default=True,
    type=int,
    help="Seeds the draws that decide which authorizations fail.",
)
def payment_sim(
    host: str, port: int, decline_over: int, failure_rate: float, latency_ms: float, seed: int
) -> None:
    """Run the simulated payment gateway (tokens: tok_decline, tok_timeout). Ctrl-C stops it."""
    config = SimulatorConfig(
        decline_over=decline_over, failure_rate=failure_rate, latency_ms=latency_ms, seed=seed
    )
    try:
        asyncio.run(_serve_until_signalled(config, host, port))
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None


async def _serve_until_signalled(config: SimulatorConfig, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running(config, host, port) as url:
            click.echo(f"payment simulator listening on {url}")
            await stop.wait()
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)


if __name__ == "__main__":  # pragma: no cover
    payment_sim()
