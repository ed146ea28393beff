"""BuildKit plain-progress parsing: the build log is the evidence of what ran."""

from __future__ import annotations

from build_helpers import SAMPLE_DOCKERFILE as DOCKERFILE
from build_helpers import SAMPLE_LOG as LOG
from rocstack.imaging.progress import BuildProgress, parse_log, stage_names


def test_stage_names_follow_the_dockerfile_and_name_unnamed_stages():
    assert stage_names(DOCKERFILE) == ["base", "python-env", "build-rocstack-kernels", "runtime"]
    assert stage_names("FROM a\nRUN x\nfrom b as second\nFROM --platform=linux/amd64 c\n") == ["stage-0", "second", "stage-2"]


def test_summary_tells_run_stages_from_cached_ones():
    progress = parse_log(LOG, DOCKERFILE)
    summary = progress.summary()
    assert list(summary) == ["base", "python-env", "build-rocstack-kernels", "runtime"]
    assert progress.stages_run() == ["build-rocstack-kernels"]
    kernels = summary["build-rocstack-kernels"]
    assert (kernels.steps_run, kernels.steps_cached, kernels.seconds) == (2, 0, 14.4)
    assert summary["base"].ran is False and summary["base"].steps_cached == 1  # FROM is not counted
    assert summary["runtime"].steps_cached == 1


def test_step_output_is_kept_and_mount_options_are_hidden_from_people():
    progress = parse_log(LOG, DOCKERFILE)
    step = progress.steps[14]
    assert list(step.output) == ["[1/2] gfx942 rms_norm built", "[2/2] gfx942 silu built"]
    assert progress.steps[8].command == "RUN pip install torch"
    assert progress.stage_number("build-rocstack-kernels") == (3, 4)
    # "exporting to image" is engine work outside any stage: tracked, never a stage.
    assert progress.steps[19].stage == "" and progress.steps[19].seconds == 0.4


def test_a_failed_step_is_found_with_its_error():
    log = LOG.replace("#14 DONE 14.3s", "#14 ERROR: executor failed running [/bin/sh -c rocstack kernels build]: exit code: 1")
    log += "------\n > [build-rocstack-kernels 2/2] RUN rocstack kernels build:\n------\nerror: failed to solve: exit code: 1\n"
    progress = parse_log(log, DOCKERFILE)
    failed = progress.failed_step()
    assert failed is not None and failed.stage == "build-rocstack-kernels" and failed.index == 2
    assert "exit code: 1" in failed.error
    assert progress.other_errors[-1].startswith("error: failed to solve")


def test_stage_order_is_recovered_from_a_rocstack_log():
    text = "".join(f"dockerfile| {line}\n" for line in DOCKERFILE.splitlines()) + LOG
    assert parse_log(text).stages == ["base", "python-env", "build-rocstack-kernels", "runtime"]


def test_feed_reports_events_in_order():
    progress = BuildProgress(DOCKERFILE)
    events = [e for line in LOG.splitlines() if (e := progress.feed(line))]
    kinds = [(kind, step.id) for kind, step in events if step.id == 14]
    assert kinds == [("start", 14), ("output", 14), ("output", 14), ("done", 14)]
    assert not progress.running()


def test_reporter_lines_name_stage_component_step_and_time():
    import io

    from rocstack.imaging.reporter import ProgressReporter
    from rocstack.log import Log

    stream = io.StringIO()
    progress = BuildProgress(DOCKERFILE)
    reporter = ProgressReporter(progress, {"build-rocstack-kernels": "rocstack-kernels"}, Log(stream=stream, ci=None))
    for line in LOG.splitlines():
        if event := progress.feed(line):
            reporter.on_event(*event)
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert "stage 3/4 build-rocstack-kernels (rocstack-kernels) step 2/2 running: RUN rocstack kernels build" in lines
    assert "stage 3/4 build-rocstack-kernels (rocstack-kernels) step 2/2 done in 14.3s: RUN rocstack kernels build" in lines
    assert "stage 2/4 python-env step 1/1 cached: RUN pip install torch" in lines
    assert not any("FROM" in line for line in lines)
    quiet = io.StringIO()
    silent = ProgressReporter(BuildProgress(DOCKERFILE), {}, Log(stream=quiet, quiet=True))
    silent.say("anything")
    assert quiet.getvalue() == ""
