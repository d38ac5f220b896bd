"""Operator control of the work queues: statistics, pause and resume, clearing finished jobs."""
