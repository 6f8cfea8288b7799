"""Each command SIGKILLed at K seeded moments (start-up, mid-work, the final write/rename),
each kill followed by a rerun (pretrain: ``--resume auto``) that is itself the next trial.

Asserted for every kill: (b) every final output present is complete (byte-equal to an
uninterrupted run's; a directory written as a whole holds all of its files) and every other
file left is a valid intermediate (a checkpoint that loads, a track part) or a hidden
temporary; (c) the inputs, an earlier output beside the new one and every file complete
before the trial are untouched. Asserted for every run that completes, the last one included:
(a) the final outputs are byte-identical to the uninterrupted run's (pretrain: the resumed
model's weights, bit for bit on the CPU, and its newest checkpoint; JSON summaries up to the
keys that are timings, ``faults.harness.TIMING_KEYS``). See ``faults.harness``.
"""

from __future__ import annotations

import pytest

from faults.cases import CASES, KILLS


@pytest.mark.parametrize("command", list(CASES))
def test_killed_runs_leave_nothing_half_written_and_reruns_match(kill_chains, command):
    result = kill_chains[command]
    assert not result.errors, "\n".join(result.errors)
    assert result.kills >= KILLS, f"only {result.kills} kills"
    assert set(result.phases) == {"startup", "mid", "final"}, result.phases
    assert result.survived == result.kills
    assert result.completed >= 1 and result.identical == result.completed
    assert result.trials[-1].kind == "complete"
