import io

import pytest

from rocstack.log import Log


def test_sections_print_and_time():
    out = io.StringIO()
    log = Log(stream=out)
    with log.section("Compile kernels"):
        log.info("gfx942: 12 kernels")
    text = out.getvalue()
    assert "▶ Compile kernels" in text and "gfx942: 12 kernels" in text and "✓ Compile kernels (" in text
    assert log.durations["Compile kernels"] >= 0


def test_failed_section_is_reported_even_when_quiet():
    out = io.StringIO()
    log = Log(stream=out, quiet=True)
    with pytest.raises(RuntimeError):
        with log.section("Build stage"):
            raise RuntimeError("boom")
    assert out.getvalue().startswith("✗ Build stage failed after")
    assert "Build stage" in log.durations
