"""A QuietLock's holder runs no profile hook; a profiler (cProfile) keeps running."""

from __future__ import annotations

import cProfile
import sys

from escalation_risk.quiet_lock import QuietLock


def test_the_hook_is_off_while_held_and_back_after():
    seen: list[str] = []
    lock = QuietLock()

    def hook(frame, event, arg) -> None:
        if event == "call":
            seen.append(frame.f_code.co_name)

    def inside() -> None:
        pass

    def outside() -> None:
        pass

    sys.setprofile(hook)
    try:
        with lock:
            assert lock.locked()
            inside()
        outside()
    finally:
        sys.setprofile(None)
    assert "inside" not in seen and "outside" in seen and not lock.locked()


def test_a_profiler_keeps_running_through_it():
    def inside() -> int:
        return 1

    prof = cProfile.Profile()
    prof.enable()
    try:
        with QuietLock():
            inside()
        inside()
    finally:
        prof.disable()
    prof.create_stats()
    calls = [v[1] for k, v in prof.stats.items() if k[2] == "inside"]  # type: ignore[attr-defined]
    assert calls == [2]
