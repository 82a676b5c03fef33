"""harness: a benchmark-and-evaluation harness for continuous-control reinforcement learning."""

__version__ = "0.1.0"
