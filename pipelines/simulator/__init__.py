"""A faithful stand-in for the Trigg Integrations API, for the demo, the tests and benchmarks."""

from pipelines.simulator.clock import SimulatedClock
from pipelines.simulator.data import CustomerStore, SimulatedCustomer
from pipelines.simulator.server import DEMO_API_KEY, SHAPES, Fault, TriggSimulator

__all__ = [
    "DEMO_API_KEY",
    "SHAPES",
    "CustomerStore",
    "Fault",
    "SimulatedClock",
    "SimulatedCustomer",
    "TriggSimulator",
]
