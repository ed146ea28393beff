"""Live build progress for people: stage N/M, component, step, elapsed time.

One line per step that finishes (cached or done, with its time), one when a step
starts producing output, and a heartbeat while a long step runs, so a 10-minute
compile never looks hung. Lines go to the task's ``Log`` (a quiet log prints none);
the full log is always on disk.
"""

from __future__ import annotations

import time

from rocstack.imaging.progress import BuildProgress, Step
from rocstack.log import Log


class ProgressReporter:
    def __init__(self, progress: BuildProgress, components: dict[str, str], log: Log, heartbeat_s: float = 15.0):
        self.progress = progress
        self.components = components  # stage name -> component name
        self.log = log
        self.heartbeat_s = heartbeat_s
        self._last_print = time.monotonic()
        self._announced: set[int] = set()

    def say(self, text: str) -> None:
        self.log.step(text)
        self._last_print = time.monotonic()

    def _where(self, step: Step) -> str:
        number, total = self.progress.stage_number(step.stage)
        stage = f"stage {number}/{total} {step.stage}" if number else f"stage {step.stage}"
        component = self.components.get(step.stage)
        if component:
            stage += f" ({component})"
        return f"{stage} step {step.index}/{step.count}"

    @staticmethod
    def _short(text: str, width: int = 70) -> str:
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 3] + "..."

    def on_event(self, event: str, step: Step) -> None:
        if step.is_from:
            return
        if not step.stage:  # engine work outside the stages: only exporting takes time
            if event == "done" and step.seconds >= 1:
                self.say(f"{step.instruction} done in {step.seconds:.1f}s")
            return
        if event == "output" and step.id not in self._announced:
            self._announced.add(step.id)
            self.say(f"{self._where(step)} running: {self._short(step.command)}")
        elif event == "cached":
            self.say(f"{self._where(step)} cached: {self._short(step.command)}")
        elif event == "done":
            self.say(f"{self._where(step)} done in {step.seconds:.1f}s: {self._short(step.command)}")
        elif event == "error":
            self.say(f"{self._where(step)} FAILED: {self._short(step.command)}")

    def on_idle(self) -> None:
        """Called when no output came for a while: say what is still running."""
        if time.monotonic() - self._last_print < self.heartbeat_s:
            return
        running = self.progress.running()
        if running:
            parts = [f"{self._where(s)} ({self._short(s.command, 40)})" for s in running[:2]]
            self.say("still running: " + "; ".join(parts))
        else:
            self.say("waiting for the engine")
