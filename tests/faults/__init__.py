"""Fault injection (issue 24): the real CLI killed with SIGKILL at seeded moments, then rerun."""
