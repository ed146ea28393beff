import io

import pytest

from rocstack.log import Log


def test_sections_print_and_time():
    out = io.StringIO()
    log = Log(stream=out, ci=None)
    with log.section("Compile kernels"):
        log.info("gfx942: 12 kernels")
    text = out.getvalue()
    assert "▶ Compile kernels" in text and "gfx942: 12 kernels" in text and "✓ Compile kernels (" in text
    assert log.durations["Compile kernels"] >= 0


def test_failed_section_is_reported_even_when_quiet():
    out = io.StringIO()
    log = Log(stream=out, quiet=True, ci=None)
    with pytest.raises(RuntimeError):
        with log.section("Build stage"):
            raise RuntimeError("boom")
    assert out.getvalue().startswith("✗ Build stage failed after")
    assert "Build stage" in log.durations


def test_sections_fold_on_github_actions():
    out = io.StringIO()
    log = Log(stream=out, ci="github")
    with log.section("Build stage"):
        log.step("compiling")
    lines = out.getvalue().splitlines()
    assert lines[0] == "::group::Build stage" and lines[-1] == "::endgroup::"
    assert any(line.endswith("] compiling") for line in lines)


def test_sections_fold_on_gitlab_and_a_failure_shows_outside_the_fold():
    out = io.StringIO()
    log = Log(stream=out, ci="gitlab")
    with pytest.raises(ValueError):
        with log.section("Push image"):
            raise ValueError("refused")
    text = out.getvalue()
    assert "section_start:" in text and ":push_image[collapsed=true]" in text
    assert text.index("section_end:") < text.index("✗ Push image failed")


def test_ci_is_detected_from_the_runners_variables():
    from rocstack.log import detect_ci

    assert detect_ci({"GITHUB_ACTIONS": "true"}) == "github"
    assert detect_ci({"GITLAB_CI": "true"}) == "gitlab"
    assert detect_ci({}) is None
