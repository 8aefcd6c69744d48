"""Runnable worker modules and the example ML jobs used by the demo and the tests."""
